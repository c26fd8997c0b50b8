#!/usr/bin/env bash
# skaffold's custom build step: `pants package` an image target, tag the image Pants
# built with the name skaffold asks for ($IMAGE), push it when skaffold says so.
#   usage: infra/skaffold-build.sh <pants docker_image target> <image Pants builds>
set -euo pipefail
target="$1" built="$2"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${IMAGE:?skaffold sets IMAGE}"
./pants --no-pantsd package "$target"
docker tag "$built" "$IMAGE"
if [[ "${PUSH_IMAGE:-false}" == "true" ]]; then
  docker push "$IMAGE"
fi
