# Shared prelude of the bench scripts (source it; it runs nothing by itself):
# a work directory removed on exit, the background processes killed on exit,
# the built-in loopback upstream, and waiting for `sluice serve` to be ready.
#   source "$(dirname "$0")/lib.sh"
#   bench_work                       # $work, $pids, the EXIT trap
#   bench_upstream "$SLUICE" 1800    # $UP: the upstream's port on 127.0.0.1
#   bench_ready "$work/serve.err"    # waits for "sluice: ready" (5 s at most)
#   PROXY=$(bench_listener "$work/serve.err")   # host:port of listener1, or exit 1
#   bench_squid_private_conf "$d" >>"$d/squid.conf"   # the squid.conf lines every run shares
#   bench_ca DIR upca "bench upstream CA"; bench_leaf DIR upca up CN SAN   # P-256 test certs

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

# $work (a fresh temporary directory) and $pids (what bench_cleanup kills on exit).
bench_work() {
  work=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bench_wait_file FILE: waits up to 5 s for FILE to be non-empty.
bench_wait_file() {
  for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}

# bench_upstream SLUICE LIFETIME_S [ARGS...]: the built-in upstream on 127.0.0.1; sets $UP.
bench_upstream() {
  local bin=$1 lifetime=$2
  shift 2
  "$bin" bench upstream --listen 127.0.0.1:0 --lifetime "$lifetime" "$@" >"$work/upstream.port" &
  pids+=($!)
  bench_wait_file "$work/upstream.port" || { echo "the bench upstream did not start" >&2; exit 1; }
  UP=$(head -1 "$work/upstream.port")
}

# bench_ready ERRFILE: waits up to 5 s for a serve's "sluice: ready" line.
bench_ready() {
  for _ in $(seq 100); do grep -q "sluice: ready" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

# bench_listener ERRFILE: prints listener1's tcp host:port once serve is ready; exits if it is not.
bench_listener() {
  local addr=""
  bench_ready "$1" && addr=$(sed -n 's/^sluice: listening listener1 on tcp://p' "$1")
  [ -n "$addr" ] || { echo "sluice did not start: $(cat "$1")" >&2; exit 1; }
  echo "$addr"
}

# bench_squid_private_conf DIR: the part of a bench squid.conf every run shares (append it):
# no cache and no logs but DIR/cache.log, its files in DIR, no side ports, loopback DNS only
# (names come from a hosts_file), no Via or X-Forwarded-For.
bench_squid_private_conf() {
  local d=$1
  cat <<EOF
cache deny all
cache_mem 8 MB
access_log none
cache_store_log none
cache_log $d/cache.log
pid_filename $d/squid.pid
coredump_dir $d
logfile_rotate 0
icp_port 0
htcp_port 0
snmp_port 0
udp_incoming_address 127.0.0.1
dns_nameservers 127.0.0.1
visible_hostname sluice-bench
via off
forwarded_for delete
shutdown_lifetime 1 seconds
max_filedescriptors 65536
pinger_enable off
netdb_filename none
EOF
}

# bench_ca DIR NAME CN: a P-256 CA valid for two days, DIR/NAME.crt and DIR/NAME.key.
bench_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$3" \
    -keyout "$1/$2.key" -out "$1/$2.crt" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# bench_leaf DIR CA NAME CN SAN: a P-256 server leaf for SAN (e.g. IP:127.0.0.1,DNS:x.test)
# signed by DIR/CA.{crt,key}, valid for two days: DIR/NAME.crt and DIR/NAME.key. It carries the
# key identifiers strict clients want (Python 3.13 checks the authority key id).
bench_leaf() {
  local d=$1 ca=$2 name=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$4" \
    -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n' \
    "$5" >"$d/$name.ext"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial -days 2 \
    -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
}
