"""Verifies a minted leaf with Python's ssl module in strict X.509 mode (what Python >= 3.13
does by default): a TLS handshake over memory BIOs, the server presenting the leaf."""
import ssl
import sys

ca_file, leaf_file, key_file, host = sys.argv[1:5]
client_ctx = ssl.create_default_context(cafile=ca_file)
client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
assert client_ctx.verify_flags & ssl.VERIFY_X509_STRICT
server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(leaf_file, key_file)

c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
client = client_ctx.wrap_bio(c_in, c_out, server_hostname=host)
server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
done = [False, False]
for _ in range(20):
    for i, (side, out, peer_in) in enumerate(((client, c_out, s_in), (server, s_out, c_in))):
        if not done[i]:
            try:
                side.do_handshake()
                done[i] = True
            except ssl.SSLWantReadError:
                pass
        peer_in.write(out.read())
    if all(done):
        break
print("verified" if all(done) else "incomplete")
