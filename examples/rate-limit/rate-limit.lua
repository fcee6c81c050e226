-- At most LIMIT new connections per host per WINDOW seconds, per sandbox.
-- The counter is shared by every worker and outlives connections and reloads;
-- its window slides (a count expires WINDOW seconds after it was made, give or
-- take a sixteenth of the window).
local LIMIT = 30
local WINDOW = 60

function on_connect(c)
  local n = sluice.counter("connections:" .. c.listener .. ":" .. c.host, WINDOW):add(1)
  if n > LIMIT then
    return {
      verdict = "deny",
      reason = string.format("sandbox %s opened more than %d connections to %s in %d s; wait and retry",
                             c.listener, LIMIT, c.host, WINDOW),
    }
  end
  return nil -- no opinion: the allow list decides
end
