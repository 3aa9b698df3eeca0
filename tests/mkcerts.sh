#!/bin/sh
# mkcerts.sh DIR - throw-away TLS material for the fake SES server tests.
#
# Creates in DIR (EC P-256 keys, 30 days validity):
#   ca.pem, ca.key          a test CA
#   server.pem, server.key  a server certificate for "localhost" signed by that CA
#                           (SAN DNS:localhost only, deliberately no IP SAN, so
#                           verifying it as "127.0.0.1" must fail)
#   ip.pem, ip.key          a server certificate for the address 127.0.0.1
#                           only (SAN IP:127.0.0.1, no name), by the same CA
#   other-ca.pem            an unrelated CA, for "wrong CA" tests
# Does nothing if DIR/server.pem already exists.  Safe to run concurrently on
# the same DIR (a lock directory serialises the runs).
set -eu

dir=${1:?usage: mkcerts.sh DIR}
[ -f "$dir/server.pem" ] && exit 0
mkdir -p "$dir"

# Serialise concurrent runs; a lock older than 60 s is considered stale.
lock="$dir/.mkcerts.lock"
tries=0
until mkdir "$lock" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 600 ]; then rmdir "$lock" 2>/dev/null || true; tries=0; fi
    sleep 0.1
done
tmp=
trap 'rm -rf "$tmp"; rmdir "$lock" 2>/dev/null || true' EXIT
trap 'exit 1' HUP INT TERM
tmp=$(mktemp -d "$dir/.mkcerts.XXXXXX")
[ -f "$dir/server.pem" ] && exit 0    # another run finished while we waited

# Run openssl quietly; show its output only if it fails.
ossl() {
    openssl "$@" >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; echo "mkcerts.sh: openssl $1 failed" >&2; exit 1; }
}

# Our own config, so nothing depends on the system openssl.cnf.
cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_ip]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

umask 077
newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
newca() {  # newca KEY CERT CN
    newkey "$1"
    ossl req -config "$tmp/openssl.cnf" -new -x509 -days 30 -key "$1" -out "$2" \
        -subj "/CN=$3" -extensions v3_ca
}

newca "$tmp/ca.key" "$tmp/ca.pem" "sesrelay test CA"
newca "$tmp/other-ca.key" "$tmp/other-ca.pem" "sesrelay unrelated test CA"
newkey "$tmp/server.key"
ossl req -config "$tmp/openssl.cnf" -new -key "$tmp/server.key" -out "$tmp/server.csr" \
    -subj "/CN=localhost"
sign() {  # sign CSR EXTENSIONS CERT
    ossl x509 -req -in "$1" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
        -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 30 \
        -extfile "$tmp/openssl.cnf" -extensions "$2" -out "$3"
}
sign "$tmp/server.csr" v3_server "$tmp/server.pem"
newkey "$tmp/ip.key"
ossl req -config "$tmp/openssl.cnf" -new -key "$tmp/ip.key" -out "$tmp/ip.csr" \
    -subj "/CN=127.0.0.1"
sign "$tmp/ip.csr" v3_ip "$tmp/ip.pem"

chmod 644 "$tmp/ca.pem" "$tmp/other-ca.pem" "$tmp/server.pem" "$tmp/ip.pem"
# server.pem last: its presence means the set is complete.
for f in ca.key ca.pem other-ca.pem ip.key ip.pem server.key server.pem; do
    mv -f "$tmp/$f" "$dir/$f"
done
