#!/bin/sh
# Regenerates the TLS test fixtures (run once; the output is committed).
# A root CA, an intermediate CA it signs (as Vault's pki_int), and leaves the
# intermediate signs, in the key formats Vault PKI returns:
#   rsa:     RSA 2048, PKCS#1 `RSA PRIVATE KEY` (a serial whose DER has a sign byte)
#   ec:      P-256, SEC1 `EC PRIVATE KEY`
#   ed25519: Ed25519, PKCS#8 `PRIVATE KEY`
#   other:   P-256, SEC1: a second leaf, for key mismatches
#   p521.key: a P-521 key alone, which rustls (ring) cannot sign with
# Each is valid for 100 years; leaves are for serverAuth and clientAuth with
# the names localhost, gateway.internal and 127.0.0.1.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
days=36500

cat > "$tmp/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:gateway.internal, DNS:localhost, IP:127.0.0.1
CNF

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/root.key"
openssl req -x509 -new -key "$tmp/root.key" -subj "/O=vault-config tests/CN=Test Root CA" \
    -days $days -sha256 -set_serial 0x01 -config "$tmp/ext.cnf" -extensions ca -out root.pem

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/int.key"
openssl req -new -key "$tmp/int.key" -subj "/O=vault-config tests/CN=Test Intermediate CA" -out "$tmp/int.csr"
openssl x509 -req -in "$tmp/int.csr" -CA root.pem -CAkey "$tmp/root.key" -days $days -sha256 \
    -set_serial 0x2f3a11 -extfile "$tmp/ext.cnf" -extensions ca -out intermediate.pem

leaf() { # name serial common_name
    openssl req -new -key "$1.key" -subj "/O=vault-config tests/CN=$3" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -CA intermediate.pem -CAkey "$tmp/int.key" -days $days \
        -sha256 -set_serial "$2" -extfile "$tmp/ext.cnf" -extensions leaf -out "$1.pem"
}

openssl genrsa -traditional -out rsa.key 2048 2>/dev/null
leaf rsa 0x9a0f3c5e7b1d2f4a6c8e0a1b3c5d7e9f01234567 gateway.internal
openssl ecparam -name prime256v1 -genkey -noout -out ec.key
leaf ec 0x3a0fbc11d2e4f60718293a4b5c6d7e8f90a1b2c3 gateway.internal
openssl genpkey -algorithm ed25519 -out ed25519.key
leaf ed25519 0x5e2d0c1b ed25519.internal
openssl ecparam -name prime256v1 -genkey -noout -out other.key
leaf other 0x7f0000000000000000000000000000000000aa01 other.internal
openssl ecparam -name secp521r1 -genkey -noout -out p521.key
