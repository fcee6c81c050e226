-- Deny new connections once a sandbox has uploaded more than BUDGET bytes in
-- the last WINDOW seconds. on_close adds each connection's upload (tunnel
-- payload, or forwarded request heads and bodies) to the sandbox's counter.
local BUDGET = 10 * 1024 * 1024
local WINDOW = 3600

local function uploaded(c)
  return sluice.counter("uploaded:" .. c.listener, WINDOW)
end

function on_connect(c)
  local used = uploaded(c):get()
  if used > BUDGET then
    return {
      verdict = "deny",
      reason = string.format("sandbox %s uploaded %.1f MiB in the last %d s (budget %.1f MiB)",
                             c.listener, used / 1048576, WINDOW, BUDGET / 1048576),
    }
  end
end

function on_close(c, stats)
  if stats.bytes_up > 0 then
    local total = uploaded(c):add(stats.bytes_up)
    if total > BUDGET then
      sluice.log("warn", string.format("sandbox %s is over its upload budget: %d bytes", c.listener, total))
    end
  end
end
