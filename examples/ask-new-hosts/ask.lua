-- A listed host is trusted over TLS (CONNECT, SOCKS5); plain HTTP to it, which anyone on
-- the path can read and change, is a question for a person all the same.
function on_connect(c)
  if c.kind == "http" then
    return { verdict = "ask", reason = "unencrypted HTTP to " .. c.host }
  end
  return nil  -- the allow list, then the default (ask)
end
