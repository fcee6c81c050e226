-- The credential lives here, readable by sluice and not by the sandbox.
-- Replace it with the real token (and chmod 600 this file).
local SERVICE = "artifacts.internal.example"
local TOKEN = "Bearer example-token-for-artifacts"

function on_request(c, r)
  if c.host == SERVICE then
    r:set_header("Authorization", TOKEN) -- replaces whatever the client sent
  else
    r:remove_header("Authorization")     -- never leak a credential elsewhere
  end
end
