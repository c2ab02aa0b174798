# Helpers shared by the benchmark scripts (bench.sh, bench-s3.sh,
# bench-ipfs.sh); sourced, not run.

# Drops the page cache so a read is cold (needs root; a no-op otherwise).
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# Seconds since the epoch with nanoseconds, for timing with bc.
now() { date +%s.%N; }
# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
