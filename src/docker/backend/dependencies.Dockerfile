# The dependency layer the five backend images share (`ticketing/backend-dependencies`):
# the third-party packages every backend wheel declares, resolved inside the image, for
# the image's platform, from the project's lockfile, hash-checked
# (src/docker/venv_from_lock.py). Built once for the five (src/docker/backend/Dockerfile
# starts FROM it), and cached until the lockfile or those requirements change.

# 1. The requirements the wheels declare (the only thing the next step reads of them).
FROM python:3.11.11-slim-bookworm AS requirements
COPY src/docker/venv_from_lock.py /build/
COPY ticketing_*.whl /build/wheels/
RUN python3.11 /build/venv_from_lock.py requirements /build/wheels/*.whl > /build/requirements.txt

# 2. The venv of those requirements.
FROM python:3.11.11-slim-bookworm AS dependencies
COPY src/docker/venv_from_lock.py 3rdparty/python/default.lock /build/
COPY --from=requirements /build/requirements.txt /build/
RUN python3.11 /build/venv_from_lock.py venv /build/default.lock /build/requirements.txt /app/venv

# 3. The base of every backend image: the user it runs as, and the venv.
FROM python:3.11.11-slim-bookworm
RUN useradd --create-home --uid 10001 app
COPY --from=dependencies /app/venv /app/venv
