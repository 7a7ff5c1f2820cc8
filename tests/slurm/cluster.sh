#!/usr/bin/env bash
# A real one-node SLURM cluster on localhost, for tests and CI (see docs/cluster.md).
#
#   cluster.sh install                     apt-get install what is missing (munge, slurm-wlm,
#                                          slurmdbd, mariadb-server); idempotent, needs root
#   cluster.sh start DIR [options]         start munged, [mariadbd, slurmdbd,] slurmctld, slurmd
#                                          with everything (configs, state, logs, pid files)
#                                          under DIR; prints the env vars to export
#       --no-accounting                    no mariadb/slurmdbd (AccountingStorageType=none)
#       --gpus N                           fake GPUs on the node (default 1; N>1 uses mknod)
#       --cpus N / --mem-mb MB             declare a bigger node than the machine has
#                                          (SlurmdParameters=config_overrides)
#       --account NAME                     account to create (default: segaug)
#   cluster.sh stop DIR                    end the daemons by their pid files (never by name)
#   cluster.sh status DIR                  daemons alive? sinfo; exit 0 iff all are up
#   cluster.sh env DIR                     print the env vars again
#
# Daemons run as root (SlurmUser=root), no systemd needed. Ports are picked free at start.
set -euo pipefail

PKGS=(munge slurm-wlm slurmdbd mariadb-server)
ACCOUNT_DEFAULT=segaug
CLUSTER_NAME=segauglocal
NODE=localhost

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------- install
cmd_install() {
    local missing=()
    for p in "${PKGS[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "already installed: ${PKGS[*]}"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "install needs root (missing: ${missing[*]})"
    log "installing: ${missing[*]}"
    # Keep apt from starting the system services (system mariadb on :3306, munge, slurm*):
    # the cluster runs private daemons. policy-rc.d exit 101 = "don't start"; removed after.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
        apt-get update -q >/dev/null || true
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    fi
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get install failed ($rc)"
    log "installed: ${missing[*]}"
}

# ---------------------------------------------------------------- helpers
free_ports() {  # N -> N distinct free TCP ports on 127.0.0.1, one per line
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

pid_alive() {  # pidfile
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() {  # seconds description command...
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            log "timed out after ${secs}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# This cluster's own processes, found without matching names alone: the daemons run with
# SEGAUG_SLURM_DAEMON_DIR=DIR in their environment; slurmstepd clears its environment but
# keeps DIR/log/slurmd.log open (inherited from slurmd).
marked_pids() {  # DIR
    local p fd
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" != "$$" ] || continue
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "SEGAUG_SLURM_DAEMON_DIR=$1"; then
            echo "${p#/proc/}"; continue
        fi
        case "$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)" in
            slurmstepd*)
                for fd in "$p"/fd/*; do
                    if [ "$(readlink "$fd" 2>/dev/null)" = "$1/log/slurmd.log" ]; then
                        echo "${p#/proc/}"; break
                    fi
                done ;;
        esac
    done
}

with_descendants() {  # PID... -> those and all their descendants
    ps -e -o pid=,ppid= | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
        { parent[$1] = $2 }
        END {
            do { changed = 0
                 for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
            } while (changed)
            for (p in keep) print p
        }'
}

print_env() {  # DIR
    local d=$1
    cat "$d/env.sh"
}

# ---------------------------------------------------------------- start
cmd_start() {
    local dir="" accounting=1 gpus=1 cpus="" mem_mb="" account=$ACCOUNT_DEFAULT
    while [ $# -gt 0 ]; do
        case "$1" in
            --no-accounting) accounting=0 ;;
            --gpus) gpus=$2; shift ;;
            --cpus) cpus=$2; shift ;;
            --mem-mb) mem_mb=$2; shift ;;
            --account) account=$2; shift ;;
            -*) die "unknown option $1" ;;
            *) [ -z "$dir" ] || die "one DIR only"; dir=$1 ;;
        esac
        shift
    done
    [ -n "$dir" ] || die "usage: cluster.sh start DIR [--no-accounting] [--gpus N]"
    for b in munged slurmctld slurmd sbatch; do
        command -v "$b" >/dev/null || die "$b not found: run 'cluster.sh install' first"
    done
    if [ "$accounting" = 1 ]; then
        for b in slurmdbd sacctmgr mariadbd mariadb-install-db; do
            command -v "$b" >/dev/null || die "$b not found: run 'cluster.sh install' first"
        done
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -e "$dir/run" ] && ls "$dir"/run/*.pid >/dev/null 2>&1; then
        for f in "$dir"/run/*.pid; do
            if pid_alive "$f"; then
                die "a cluster is already running in $dir ($(basename "$f")); stop it first"
            fi
        done
    fi
    # unix socket paths (munge, mariadb) must fit in sun_path (108 bytes)
    [ ${#dir} -le 80 ] || die "DIR path too long for unix sockets (${#dir} > 80 chars): $dir"
    local t0=$SECONDS
    export SEGAUG_SLURM_DAEMON_DIR=$dir   # see marked_pids
    # a start that fails half-way stops what did come up
    trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed; stopping what came up"; cmd_stop "'"$dir"'" >/dev/null 2>&1 || true; fi' EXIT
    local etc=$dir/etc run=$dir/run logs=$dir/log spool=$dir/spool
    mkdir -p "$etc" "$run" "$logs" "$spool/ctld" "$spool/d" "$dir/munge" "$dir/dev"
    chmod 700 "$dir/munge"

    local host ctld_port d_port dbd_port db_port
    host=$(hostname -s)
    { read -r ctld_port; read -r d_port; read -r dbd_port; read -r db_port; } < <(free_ports 4)

    # The node: real core count and memory unless overridden (then slurmd must not
    # check them against the hardware: config_overrides).
    local real_cpus real_mem
    real_cpus=$(nproc)
    real_mem=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
    local overrides=""
    [ -n "$cpus" ] || cpus=$real_cpus
    if [ -z "$mem_mb" ]; then
        mem_mb=$((real_mem - 1024))           # leave 1 GiB to the OS and the daemons
        [ "$mem_mb" -ge 1024 ] || mem_mb=$real_mem
    fi
    if [ "$cpus" -gt "$real_cpus" ] || [ "$mem_mb" -gt "$real_mem" ]; then
        overrides="SlurmdParameters=config_overrides"
    fi
    # Default memory per CPU: without it a job with no --mem gets the whole node's
    # memory and jobs run one at a time.
    local def_mem=$((mem_mb / cpus)); [ "$def_mem" -le 1024 ] || def_mem=1024

    # Fake GPUs: /dev/null serves for one; more need distinct character devices.
    local gres_file
    if [ "$gpus" -le 1 ]; then
        gres_file=/dev/null
    else
        local i
        for ((i = 0; i < gpus; i++)); do
            [ -c "$dir/dev/fakegpu$i" ] || mknod "$dir/dev/fakegpu$i" c 1 3
        done
        gres_file="$dir/dev/fakegpu[0-$((gpus - 1))]"
    fi

    # ---- munge: private key, socket, pid, log
    local msock=$dir/munge/munge.socket
    [ -s "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    # --force: run as root and accept a DIR under a world-writable parent (/tmp)
    munged --force --key-file="$dir/munge/munge.key" --socket="$msock" \
        --pid-file="$run/munged.pid" --log-file="$logs/munged.log" \
        --seed-file="$dir/munge/munge.seed" --num-threads=2
    wait_for 10 munged test -S "$msock"

    # ---- configs
    local acct_lines
    if [ "$accounting" = 1 ]; then
        acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$dbd_port
# connections to slurmdbd take their munge socket from here, not from AuthInfo
AccountingStoragePass=$msock
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
    else
        acct_lines="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
    fi

    cat >"$etc/slurm.conf" <<EOF
# generated by tests/slurm/cluster.sh start $dir
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$msock
StateSaveLocation=$spool/ctld
SlurmdSpoolDir=$spool/d/%n
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
# no cgroups in a container-like VM: track processes by parent pid, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
# squeue keeps finished jobs 5 min: '--slurm-status-command squeue' can see them end
MinJobAge=300
ReturnToService=2
# reject at submit a job the node can never hold (else it pends forever: PartitionConfig)
EnforcePartLimits=ALL
SchedulerType=sched/backfill
# start batch jobs at submit time (default: up to 3 s later)
SchedulerParameters=batch_sched_delay=0
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
Waittime=0
GresTypes=gpu
$acct_lines
$overrides
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus RealMemory=$mem_mb Gres=gpu:$gpus State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
    cat >"$etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$NODE Name=gpu File=$gres_file
EOF

    # srun wrapper: inside a job the slurm-jobstep executor drops every SLURM_* variable
    # (SLURM_CONF too) before it calls 'srun', and srun then looks for /etc/slurm/slurm.conf
    # or a DNS SRV record. A real cluster has one of those; this one lives in DIR, so
    # DIR/bin goes first on PATH and puts SLURM_CONF back.
    mkdir -p "$dir/bin"
    local real_srun
    real_srun=$(PATH=${PATH//$dir\/bin:/} command -v srun) || die "srun not found"
    cat >"$dir/bin/srun" <<EOF
#!/bin/sh
# generated by tests/slurm/cluster.sh (see there): srun with this cluster's SLURM_CONF
SLURM_CONF=\${SLURM_CONF:-$etc/slurm.conf}
export SLURM_CONF
exec $real_srun "\$@"
EOF
    chmod +x "$dir/bin/srun"

    local envfile=$dir/env.sh
    {
        echo "export SLURM_CONF=$etc/slurm.conf"
        echo "export PATH=$dir/bin:\$PATH"
        echo "export SEGAUG_SLURM_DIR=$dir"
        echo "export SEGAUG_SLURM_ACCOUNT=$account"
        echo "export SNAKEMAKE_SLURM_ACCOUNT=$account"
        echo "export SEGAUG_SLURM_ACCOUNTING=$accounting"
    } >"$envfile"
    export SLURM_CONF=$etc/slurm.conf

    # ---- accounting: private mariadbd on 127.0.0.1:$db_port, slurmdbd on top
    if [ "$accounting" = 1 ]; then
        local db=$dir/mysql dbsock=$dir/mysql/mysqld.sock
        mkdir -p "$db"
        if [ ! -d "$db/data/mysql" ]; then
            mariadb-install-db --no-defaults --datadir="$db/data" --user=root \
                --auth-root-authentication-method=socket --skip-test-db \
                >"$logs/mariadb-install.log" 2>&1 \
                || { cat "$logs/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
        fi
        mariadbd --no-defaults --user=root --datadir="$db/data" \
            --bind-address=127.0.0.1 --port="$db_port" --socket="$dbsock" \
            --pid-file="$run/mariadbd.pid" --log-error="$logs/mariadbd.log" \
            --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=128M \
            --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 \
            --innodb-flush-log-at-trx-commit=2 --max-allowed-packet=64M \
            >/dev/null 2>&1 </dev/null &
        wait_for 60 mariadbd mariadb --no-defaults --socket="$dbsock" -uroot -e 'select 1' \
            || { tail -20 "$logs/mariadbd.log" >&2; die "mariadbd did not come up"; }
        mariadb --no-defaults --socket="$dbsock" -uroot <<'EOF'
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
        # slurmdbd reads slurmdbd.conf beside $SLURM_CONF; it must be 0600, owned by SlurmUser
        cat >"$etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$msock
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=root
PidFile=$run/slurmdbd.pid
LogFile=$logs/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
        chmod 600 "$etc/slurmdbd.conf"
        slurmdbd
        wait_for 60 slurmdbd sacctmgr -n list cluster \
            || { tail -20 "$logs/slurmdbd.log" >&2; die "slurmdbd did not come up"; }
        # the cluster, the account the profile names, and this user in it
        sacctmgr -i -Q add cluster "$CLUSTER_NAME" >/dev/null || true
        sacctmgr -i -Q add account "$account" Cluster="$CLUSTER_NAME" \
            Description="segaug tests" Organization=segaug >/dev/null || true
        local u
        for u in "$(id -un)" ${SUDO_USER:-}; do
            sacctmgr -i -Q add user "$u" Account="$account" DefaultAccount="$account" \
                Cluster="$CLUSTER_NAME" >/dev/null || true
        done
        sacctmgr -n -P list assoc cluster="$CLUSTER_NAME" account="$account" format=user \
            | grep -qx "$(id -un)" || die "sacctmgr: association $(id -un)/$account missing"
    fi

    # ---- controller, then the node (its name is 'localhost', not this host's name)
    slurmctld -f "$etc/slurm.conf"
    wait_for 30 slurmctld scontrol ping \
        || { tail -20 "$logs/slurmctld.log" >&2; die "slurmctld did not come up"; }
    slurmd -f "$etc/slurm.conf" -N "$NODE"
    node_idle() { sinfo -h -n "$NODE" -o '%t' | grep -Eq '^(idle|mix|alloc)$'; }
    wait_for 30 "node $NODE idle" node_idle || {
        sinfo -N -l >&2 || true
        tail -20 "$logs/slurmd.log" >&2
        die "node $NODE is not idle"
    }
    log "cluster up in $((SECONDS - t0))s ($( [ "$accounting" = 1 ] && echo "with" || echo "no") accounting, $gpus GPU(s)); logs in $logs"
    print_env "$dir"
}

# ---------------------------------------------------------------- stop / status
stop_daemons() {  # DIR NAME...: SIGTERM all by pid file, wait up to 20 s, then SIGKILL
    local dir=$1; shift
    local name f pids=() names=()
    for name in "$@"; do
        f=$dir/run/$name.pid
        if pid_alive "$f"; then
            pids+=("$(cat "$f")"); names+=("$name")
            kill -TERM "$(cat "$f")" 2>/dev/null || true
        fi
    done
    local deadline=$((SECONDS + 20)) i alive
    while :; do
        alive=0
        for i in "${!pids[@]}"; do kill -0 "${pids[$i]}" 2>/dev/null && alive=1; done
        if [ $alive = 0 ] || [ $SECONDS -ge $deadline ]; then break; fi
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            log "${names[$i]} (${pids[$i]}) ignored SIGTERM for 20s; SIGKILL"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
    done
    for name in "$@"; do rm -f "$dir/run/$name.pid"; done
}

# shellcheck disable=SC2086,SC2116  # pid lists are split on purpose
cmd_stop() {
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: cluster.sh stop DIR"
    [ -d "$dir/run" ] || { log "nothing to stop in $dir"; return 0; }
    dir=$(cd "$dir" && pwd)
    # jobs first, while slurmctld is up (their processes are children of slurmstepd)
    if pid_alive "$dir/run/slurmctld.pid"; then
        local conf=$dir/etc/slurm.conf
        SLURM_CONF=$conf timeout 10 scancel --quiet -u "$(id -un)" 2>/dev/null || true
        local deadline=$((SECONDS + 15))
        while [ $SECONDS -lt $deadline ] && [ -n "$(SLURM_CONF=$conf timeout 5 squeue -h -t R,CG,S -o %i 2>/dev/null)" ]; do
            sleep 0.3
        done
    fi
    # two waves (SLURM daemons, then what they use); each daemon takes 1-6 s to exit
    stop_daemons "$dir" slurmd slurmctld slurmdbd
    stop_daemons "$dir" mariadbd munged
    # A slurmstepd that outlived slurmd (its job was not cancelled in time) still carries
    # the marker the daemons were started with: end it and the job processes under it.
    local leftovers
    leftovers=$(marked_pids "$dir")
    if [ -n "$leftovers" ]; then
        local all
        all=$(with_descendants $leftovers)
        log "ending leftover job processes: $(echo $all)"
        kill -TERM $all 2>/dev/null || true
        sleep 1
        kill -KILL $all 2>/dev/null || true
    fi
    log "stopped cluster in $dir"
}

cmd_status() {
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: cluster.sh status DIR"
    [ -d "$dir/run" ] || { echo "no cluster in $dir"; return 1; }
    dir=$(cd "$dir" && pwd)
    local rc=0 name f want=(munged slurmctld slurmd)
    grep -q 'accounting_storage/slurmdbd' "$dir/etc/slurm.conf" 2>/dev/null && want+=(mariadbd slurmdbd)
    for name in "${want[@]}"; do
        f=$dir/run/$name.pid
        if pid_alive "$f"; then
            echo "$name: running (pid $(cat "$f"))"
        else
            echo "$name: not running"; rc=1
        fi
    done
    if [ $rc = 0 ]; then
        SLURM_CONF=$dir/etc/slurm.conf sinfo -N -o '%N %P %t %c %m %G' || rc=1
    fi
    return $rc
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    env) shift; [ -n "${1:-}" ] || die "usage: cluster.sh env DIR"; print_env "$1" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
