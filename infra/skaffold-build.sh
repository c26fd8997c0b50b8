#!/usr/bin/env bash
# skaffold's custom build step: `pants package` an image target, tag the image Pants
# built with the name skaffold asks for ($IMAGE), push it when skaffold says so.
#   usage: infra/skaffold-build.sh <pants docker_image target> <image Pants builds>
set -euo pipefail
target="$1" built="$2"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${IMAGE:?skaffold sets IMAGE}"
# skaffold asks for the cluster's platform(s) in $PLATFORMS. The images resolve their
# packages inside the image (from the lockfile's wheels for linux/amd64 and arm64), so
# one of another architecture is a matter for the engine: docker builds it when told
# (DOCKER_DEFAULT_PLATFORM, which Pants passes on) and able to (Docker Desktop, Colima
# and buildx with QEMU are; a plain Linux engine without binfmt emulation is not).
host="linux/$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/' -e 's/arm64e/arm64/')"
if [[ -n "${PLATFORMS:-}" && "$PLATFORMS" != "$host" ]]; then
  if [[ "$PLATFORMS" == *,* ]]; then
    echo "skaffold-build: asked for several platforms ($PLATFORMS); Pants builds one image" >&2
    echo "  per run: set skaffold's --platform to the cluster's one (e.g. linux/amd64)" >&2
    exit 1
  fi
  echo "skaffold-build: building for $PLATFORMS on a $host host (the engine emulates it)" >&2
  export DOCKER_DEFAULT_PLATFORM="$PLATFORMS"
fi
./pants --no-pantsd package "$target"
docker tag "$built" "$IMAGE"
if [[ "${PUSH_IMAGE:-false}" == "true" ]]; then
  docker push "$IMAGE"
fi
