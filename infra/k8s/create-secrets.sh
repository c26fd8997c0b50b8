#!/usr/bin/env bash
# Make the Secrets the manifests read, with random values, in the current kubectl
# context and namespace. A Secret that exists already is left as it is (run it again
# safely). Values are hex or URL-safe: they go inside connection URLs.
set -euo pipefail

random_hex() { python3 -c "import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))" "$1"; }

make_secret() {  # make_secret NAME KEY=VALUE ...
  local name=$1
  shift
  if kubectl get secret "$name" >/dev/null 2>&1; then
    echo "secret/$name exists: kept"
    return
  fi
  local literals=()
  for pair in "$@"; do literals+=("--from-literal=$pair"); done
  kubectl create secret generic "$name" "${literals[@]}"
}

# the HS256 key every service checks sessions with
make_secret jwt-secret "JWT_KEY=$(random_hex 48)"

# each service's NATS password (nats-depl.yaml gives each its own user and subjects)
make_secret nats-credentials \
  "auth=$(random_hex 24)" \
  "tickets=$(random_hex 24)" \
  "orders=$(random_hex 24)" \
  "expiration=$(random_hex 24)" \
  "payments=$(random_hex 24)" \
  "route=$(random_hex 24)"

# each database's root password, and the replica-set keyfile its members share
make_secret mongo-credentials \
  "auth=$(random_hex 24)" \
  "tickets=$(random_hex 24)" \
  "orders=$(random_hex 24)" \
  "payments=$(random_hex 24)" \
  "keyfile=$(random_hex 384)"

# the password of the Redis that holds the web pods' tab state
make_secret redis-credentials "password=$(random_hex 24)"
