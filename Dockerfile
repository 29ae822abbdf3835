# Two images from one file (docs/docker.md):
#   --target test   the suite and its tools; `invoke ci` by default (docker-compose.test.yml)
#   (default)       the `testfleet` command line alone
# BuildKit is required (cache and bind mounts); `docker compose build` uses it. There is
# no `# syntax=` line on purpose: the engine's built-in Dockerfile frontend reads this
# file, so a build needs no frontend image from a registry and works offline.

# One Python for every stage: the 3.11 of pyproject.toml and noxfile.py, pinned to a
# patch release so that a rebuild does not change the interpreter behind our back.
# Where no registry answers, `python -m testfleet.container` passes a base built from
# Debian's packages instead (--build-arg PYTHON_IMAGE=testfleet-offline/python:3.11).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
FROM ${PYTHON_IMAGE} AS python
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore


# Dependencies only. This stage sees pyproject.toml and nothing else, so changing the
# code, the tests or the docs does not reinstall them; the pip cache survives rebuilds.
FROM python AS deps
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# The requirements are what pyproject.toml declares: the build system, the runtime
# dependencies and the `dev` extra, with the extras of testfleet it names itself
# (`testfleet[test]`) expanded. There is no lock file: versions are the build day's.
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=pyproject.toml,target=/tmp/pyproject.toml \
    python -m venv "$VIRTUAL_ENV" \
 && python -c 'import sys, tomllib; \
project = tomllib.load(open(sys.argv[1], "rb")); \
name = project["project"]["name"]; \
extras = project["project"]["optional-dependencies"]; \
expand = lambda extra: [req for item in extras[extra] for req in (sum(map(expand, item[len(name) + 1:-1].split(",")), []) if item.startswith(name + "[") else [item])]; \
print(*project["build-system"]["requires"], *project["project"]["dependencies"], *expand(sys.argv[2]), sep="\n")' \
    /tmp/pyproject.toml dev > /tmp/requirements.txt \
 && pip install --requirement /tmp/requirements.txt \
 && rm /tmp/requirements.txt


# The suite, run as in the README. The source sits at /app: [tool.coverage.paths] in
# pyproject.toml maps /app/src/testfleet back to a checkout.
FROM deps AS test
# The user that runs the tests. docker-compose.test.yml passes the host's ids, so the
# files written to the bind-mounted reports/ belong to whoever started the run.
ARG APP_UID=10001
ARG APP_GID=10001
RUN test "$APP_UID" -ne 0 \
 && groupadd --non-unique --gid "$APP_GID" testfleet \
 && useradd --non-unique --uid "$APP_UID" --gid "$APP_GID" --create-home \
        --shell /usr/sbin/nologin testfleet \
 && install -d -o testfleet -g testfleet /app
WORKDIR /app
COPY --chown=testfleet:testfleet . .
# The project alone, editable so that tracebacks and coverage name /app/src; its
# dependencies and build backend come from the deps stage, so nothing is downloaded.
RUN pip install --no-cache-dir --no-deps --no-build-isolation --editable .
# Numeric, so that a runtime can tell it is not root without reading /etc/passwd.
USER ${APP_UID}:${APP_GID}
# nox runs the sessions in this image's environment, which has every dependency
# already: no virtualenv is created and nothing is installed at run time, so
# `invoke ci` and `nox -s ...` work offline and start at once.
# Coverage data goes to reports/, the directory docker-compose.test.yml brings back.
ENV NOX_DEFAULT_VENV_BACKEND=none \
    COVERAGE_FILE=/app/reports/.coverage
CMD ["invoke", "ci"]


# The wheel of testfleet, built from what it is made of.
FROM deps AS wheel
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist .


# The default target: the `testfleet` command line (report, merge, run...) and its
# runtime dependencies (pytest, pytest-xdist), nothing else.
FROM python AS cli
RUN --mount=type=bind,from=wheel,source=/dist,target=/dist \
    --mount=type=cache,target=/root/.cache/pip \
    pip install /dist/*.whl \
 && groupadd --gid 10001 testfleet \
 && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin testfleet
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["testfleet"]
CMD ["--help"]
