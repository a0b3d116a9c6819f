# shellcheck shell=bash
# Installs what the project needs on a fresh Debian/Ubuntu machine, only what is missing.
# Sourced by scripts/test and scripts/demo. Needs root or sudo for apt.

APT_PACKAGES=(
    postgresql                     # catalog server (tests, embedded default)
    libavformat-dev libavcodec-dev libavfilter-dev libswscale-dev libswresample-dev libavutil-dev  # transcoder
    pkg-config
    libarchive-dev                 # uploader: reads .iso images in place
    libzstd-dev zlib1g-dev         # archiver: zstd bundles, gzip catalog export
    xorriso                        # tests: builds ISO images
    genisoimage                    # tests: builds ISO 9660 + UDF bridge images (files only in UDF, over 4 GiB)
    ffmpeg                         # test fixtures and the transcode benchmark's anchor
    dvdauthor                      # tests: authors DVD-Video fixtures (VIDEO_TS with IFOs, chapters, subpictures)
    chromium                       # tests: the status page rendered by a real headless browser
    chromium-driver                # tests: Selenium drives that Chromium through Debian's chromedriver (browser uploads)
    fuse3 libfuse2                 # tests: scripts/lib/eio_fs.py, a FUSE file system that returns EIO (fusermount; fusepy loads libfuse 2)
    podman runc uidmap             # tests: the cloud image run as containers (docker/build, Tests/Integration/ContainerTests)
    debootstrap                    # docker/build: base images from Debian packages where no registry is reachable
    golang-github-containernetworking-plugin-dnsname  # tests: compose services find each other by name (CNI)
    age                            # tests and bench/age: age and age-keygen, the other side of AgeEncryption's interop
    jq zstd                        # tests: the README's recovery recipe (jq) and reading every object of a bucket (zstd)
    git                            # uploader: what git ignores in a git work tree is asked of git itself
    strace                         # tests: the restore's fsyncs and renames, in the order the kernel saw them
)
# podman-compose from PyPI: Debian's 1.0.3 cannot run docker/compose.yml (see docs/deploy.md).
COMPOSE_PIP_PACKAGES=("podman-compose==1.6.0")
# What scripts/demo needs: building and running the pipeline, and ffmpeg for the sample disc.
# shellcheck disable=SC2034  # used by scripts/demo, which sources this file
DEMO_APT_PACKAGES=(
    postgresql
    libavformat-dev libavcodec-dev libavfilter-dev libswscale-dev libswresample-dev libavutil-dev
    pkg-config libarchive-dev libzstd-dev zlib1g-dev
    ffmpeg
    git                            # the uploader reads git work trees' ignore rules through git
)
# selenium: the upload page driven in Chromium; tuspy: an independent tus 1.0 client against the status server.
PIP_PACKAGES=("moto[server]==5.*" "boto3" "fusepy==3.*" "selenium==4.*" "tuspy==1.*")

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Everything the tests need that is not installed yet.
install_missing_apt_packages() {
    install_apt_packages "${APT_PACKAGES[@]}"
}

# install_apt_packages PACKAGE...: installs those of the named Debian packages that are not installed yet.
install_apt_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing Debian packages: ${missing[*]}" >&2
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# install_pip_packages_in_venv DIRECTORY REQUIREMENT...: a virtual environment in DIRECTORY holding exactly these
# pinned requirements (PyPI, by name), created or updated only when the list changed. Tools with many
# dependencies (checkov) live there, away from the test suite's Python packages.
install_pip_packages_in_venv() {
    local venv="$1"
    shift
    local wanted
    wanted=$(printf '%s\n' "$@")
    if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$wanted" ]; then return 0; fi
    echo "installing Python packages into $venv: $*" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
    printf '%s\n' "$wanted" > "$venv/.requirements"
}

# podman-compose in a virtual environment of its own, where ComposeTests looks for it.
install_compose() {
    install_pip_packages_in_venv "${XDG_CACHE_HOME:-$HOME/.cache}/personal-backup/compose-venv" "${COMPOSE_PIP_PACKAGES[@]}"
}

install_missing_pip_packages() {
    if python3 -c 'import moto, moto.server, flask, flask_cors, boto3, fuse, selenium, tusclient' 2>/dev/null; then return 0; fi
    echo "installing Python packages: ${PIP_PACKAGES[*]}" >&2
    python3 -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}" >&2
}

# PostgreSQL's server programs live outside PATH on Debian.
postgres_bin_dir() {
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
    echo "PostgreSQL server programs not found after installing 'postgresql'" >&2
    return 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
