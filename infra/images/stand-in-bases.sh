#!/usr/bin/env bash
# TEST-ONLY. Makes local stand-ins for the two base images the Dockerfiles name, and
# for the Redis image infra/k8s/redis-depl.yaml runs, for a machine that reaches no
# container registry (as the CI machines here): each is pulled if it can be, and only
# otherwise built here, under the same tag, labelled `ticketing.stand-in` (this
# script's hash: a stand-in an older script made is made again). The images users
# build and run are always the real ones.
#   python:3.11.11-slim-bookworm   Debian bookworm (mmdebstrap) with Debian's python3.11
#   node:22.12.0-bookworm-slim     that, plus node 22.12.0 and npm from the npm registry
#   redis:7.0.15-bookworm          Debian bookworm with Debian's redis-server (7.0.15,
#                                  as the official image), run from /data as it is
# The stand-ins trust the host's CA bundle and tell pip, npm and bun to use it
# (PIP_CERT, NPM_CONFIG_CAFILE, NODE_EXTRA_CA_CERTS), so a build behind the host's TLS
# proxy reaches PyPI and the npm registry as the host does.
# Needs root, a Docker engine, mmdebstrap and npm.  usage: infra/images/stand-in-bases.sh
set -euo pipefail
python_image=python:3.11.11-slim-bookworm
redis_image=redis:7.0.15-bookworm
node_image=node:22.12.0-bookworm-slim
node_version=22.12.0 npm_version=10.9.0   # the npm node 22.12.0 ships with
version=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
label="ticketing.stand-in=$version"

# the image is there (pulled now if it can be), and is not a stand-in of an older script
have() {
  docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1 || return 1
  local made
  made=$(docker image inspect --format '{{index .Config.Labels "ticketing.stand-in"}}' "$1")
  [[ -z "$made" || "$made" == "$version" ]]
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if have "$python_image"; then
  echo "stand-in-bases: $python_image is there"
else
  echo "stand-in-bases: building a stand-in for $python_image (mmdebstrap, about a minute) ..."
  ca=/etc/ssl/certs/ca-certificates.crt
  mmdebstrap --quiet --variant=minbase \
    --include=python3.11,python3.11-venv,passwd,ca-certificates \
    --customize-hook="cp $ca \"\$1$ca\"" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/rootfs.tar" >/dev/null
  docker import \
    --change "LABEL $label" \
    --change "ENV LANG=C.UTF-8 PIP_CERT=$ca PIP_DISABLE_PIP_VERSION_CHECK=1 NPM_CONFIG_CAFILE=$ca NODE_EXTRA_CA_CERTS=$ca" \
    --change 'CMD ["python3.11"]' \
    "$work/rootfs.tar" "$python_image" >/dev/null
fi

if have "$node_image"; then
  echo "stand-in-bases: $node_image is there"
else
  echo "stand-in-bases: building a stand-in for $node_image (npm packages) ..."
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  (cd "$work" && npm pack --silent "node-linux-$arch@$node_version" "npm@$npm_version" >/dev/null)
  mkdir -p "$work/ctx" && tar -xzf "$work"/node-linux-*.tgz -C "$work/ctx" \
    && mv "$work/ctx/package" "$work/ctx/node"
  tar -xzf "$work"/npm-*.tgz -C "$work/ctx" && mv "$work/ctx/package" "$work/ctx/npm"
  cat >"$work/ctx/Dockerfile" <<DOCKERFILE
FROM $python_image
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
LABEL $label
CMD ["node"]
DOCKERFILE
  docker build --quiet --tag "$node_image" "$work/ctx" >/dev/null
fi

if have "$redis_image"; then
  echo "stand-in-bases: $redis_image is there"
else
  echo "stand-in-bases: building a stand-in for $redis_image (mmdebstrap, about a minute) ..."
  mmdebstrap --quiet --variant=minbase --include=redis-server \
    --customize-hook='mkdir -p "$1"/data' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/redis.tar" >/dev/null
  docker import \
    --change "LABEL $label" \
    --change 'WORKDIR /data' \
    --change 'CMD ["redis-server"]' \
    "$work/redis.tar" "$redis_image" >/dev/null
fi
