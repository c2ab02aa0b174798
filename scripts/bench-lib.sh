# Helpers shared by the benchmark scripts (bench.sh, bench-s3.sh,
# bench-ipfs.sh); sourced, not run.

# Drops the page cache so a read is cold (needs root; a no-op otherwise).
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# Seconds since the epoch with nanoseconds, for timing with bc.
now() { date +%s.%N; }
# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# garage_start DIR S3PORT RPCPORT ADMINPORT: a one-node Garage server (the
# binary $GARAGE) keeping its data in DIR, with the key $KEY_ID/$KEY_SECRET
# and a bucket "bench" it owns. The server's PID goes to DIR/pid; its config
# is exported as GARAGE_CONFIG_FILE for later garage commands.
garage_start() {
  local G=$1 s3=$2 rpc=$3 admin=$4
  mkdir -p "$G/meta" "$G/data"
  cat > "$G/garage.toml" <<EOT
metadata_dir = "$G/meta"
data_dir = "$G/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$(openssl rand -base64 32)"
EOT
  chmod 600 "$G/garage.toml"; export GARAGE_CONFIG_FILE="$G/garage.toml"
  "$GARAGE" server > "$G/log" 2>&1 & echo $! > "$G/pid"; sleep 2
  local node; node=$("$GARAGE" node id -q | cut -d@ -f1)
  "$GARAGE" layout assign -z dc1 -c 10G "$node" >/dev/null; "$GARAGE" layout apply --version 1 >/dev/null
  "$GARAGE" key import --yes -n bench "$KEY_ID" "$KEY_SECRET" >/dev/null
  "$GARAGE" bucket create bench >/dev/null; "$GARAGE" bucket allow --read --write --owner bench --key bench >/dev/null
}
