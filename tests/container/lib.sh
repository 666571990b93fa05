# Helpers shared by the container scripts: podman set-up that works on the project's
# machines (no Docker engine, no registry, cgroup v1, a hard nofile limit), timing.
# Source it; it changes nothing until a function is called.

# Prints a line to stderr with the seconds since the script started.
log() { printf '[%5ss] %s\n' "$SECONDS" "$*" >&2; }

# Installs the host packages the container tests need (Debian/Ubuntu, as root).
install_host_packages() {
  local want=(podman runc debootstrap podman-compose python3 netavark aardvark-dns
              uidmap slirp4netns fuse-overlayfs iptables ca-certificates curl)
  local missing=() p
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Writes a containers.conf that podman can live with here and exports CONTAINERS_CONF.
# podman's default ulimits (nofile 1048576, and nproc for a non-root container user)
# exceed the machine's hard limits and make every container fail to start; systemd and journald are not there either.
setup_podman_conf() {
  local dir=${1:?directory}
  local hard nproc
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=1048576
  nproc=$(ulimit -Hu)
  [ "$nproc" = unlimited ] && nproc=4194304
  # Here, raising nproc above kernel.pid_max is refused too.
  local pid_max
  pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo "$nproc")
  [ "$nproc" -gt "$pid_max" ] && nproc=$pid_max
  mkdir -p "$dir"
  cat >"$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=${hard}:${hard}", "nproc=${nproc}:${nproc}"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF
  export CONTAINERS_CONF="$dir/containers.conf"
}

# The first Debian mirror configured for apt on this machine (deb822 or one-line form).
apt_mirror() {
  local m=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^(http|https|file):/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# The root of the Rust toolchain that `cargo` on this machine runs.
rust_sysroot() { rustc --print sysroot; }

# Seconds (with decimals) since the epoch.
now() { date +%s.%N; }
# Elapsed seconds from $1 to now, one decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
