"""Certificates for the tests' own HTTPS origins, made with the openssl program (loopback tests
only): a private upstream CA, leaves it signs for given names, an expired leaf, and a leaf from
a CA nobody trusts."""
import os
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory, name="ca", subject="/CN=sluice tests upstream CA"):
    """DIR/NAME.crt and DIR/NAME.key: a P-256 CA valid for 30 days."""
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", name + ".key", "-out", name + ".crt", "-subj", subject, "-days", "30",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         cwd=directory)
    return os.path.join(directory, name + ".crt")


def make_leaf(directory, name, dns_names, ca="ca", expired=False):
    """DIR/NAME.crt (signed by CA) and DIR/NAME.key for dns_names; `expired`: its validity ended
    yesterday (made with `openssl ca`, the one command that takes explicit dates)."""
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
         "-out", name + ".csr", "-subj", "/CN=" + dns_names[0], cwd=directory)
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(("IP:" if n[0].isdigit() else "DNS:") + n for n in dns_names) + "\n")
        f.write("extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    if not expired:
        _run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
             "-out", name + ".crt", "-days", "30", "-extfile", ext, cwd=directory)
        return os.path.join(directory, name + ".crt")
    db = os.path.join(directory, name + ".db")
    open(db, "w").close()
    conf = os.path.join(directory, name + ".cnf")
    with open(conf, "w") as f:
        f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=%s\nnew_certs_dir=%s\nserial=%s\ndefault_md=sha256\n"
                "policy=p\ncopy_extensions=none\n[p]\ncommonName=supplied\n" %
                (db, directory, os.path.join(directory, name + ".serial")))
    with open(os.path.join(directory, name + ".serial"), "w") as f:
        f.write("01\n")
    _run("ca", "-batch", "-config", conf, "-in", name + ".csr", "-cert", ca + ".crt", "-keyfile", ca + ".key",
         "-out", name + ".crt", "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
         "-extfile", ext, "-notext", cwd=directory)
    return os.path.join(directory, name + ".crt")
