#!/usr/bin/env bash
# skaffold's custom build step: `pants package` an image target, tag the image Pants
# built with the name skaffold asks for ($IMAGE), push it when skaffold says so.
#   usage: infra/skaffold-build.sh <pants docker_image target> <image Pants builds>
set -euo pipefail
target="$1" built="$2"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${IMAGE:?skaffold sets IMAGE}"
# skaffold asks for the cluster's platform(s) in $PLATFORMS. The images are built for
# the host's platform only (their dependencies come from a pex built on the host), so
# say so rather than hand a cluster of another architecture an image it cannot run.
host="linux/$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')"
if [[ -n "${PLATFORMS:-}" && "$PLATFORMS" != "$host" ]]; then
  echo "skaffold-build: asked for $PLATFORMS, but images are built for $host only" >&2
  echo "  (build on a host of that platform; see README, Deploy to Kubernetes)" >&2
  exit 1
fi
./pants --no-pantsd package "$target"
docker tag "$built" "$IMAGE"
if [[ "${PUSH_IMAGE:-false}" == "true" ]]; then
  docker push "$IMAGE"
fi
