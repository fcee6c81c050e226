-- Only reads leave this sandbox: GET and HEAD over plain HTTP.
local READ = { GET = true, HEAD = true }

function on_connect(c)
  if c.kind ~= "http" then
    return { verdict = "deny", reason = "read-only: " .. c.kind .. " tunnels are opaque; use plain http:// GET or HEAD" }
  end
end

function on_request(c, r)
  if not READ[r.method] then
    return { verdict = "deny", reason = "read-only: " .. r.method .. " is not allowed, only GET and HEAD" }
  end
end
