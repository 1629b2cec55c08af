# Sourced by ci/run-suite.sh and ci/test.sh: exports GMEMTEST_DIRECT_IO_DIR, a directory on a block
# filesystem that does real direct I/O, for the O_DIRECT cases (tmpfs, overlayfs and the like take
# O_DIRECT but copy through the page cache, which pins nothing). A value already set is kept. With
# none found, those cases skip and their message names the variable.
find_direct_io_dir() {
  local dir fstype probe
  for dir in /var/tmp "$PWD" "${HOME:-/root}" /tmp; do
    [[ -d "$dir" && -w "$dir" ]] || continue
    fstype=$(stat -f -c %T "$dir" 2>/dev/null) || continue
    case "$fstype" in tmpfs | ramfs | overlayfs | squashfs | nfs* | fuse* | 9p | v9fs) continue ;; esac
    probe=$(mktemp -p "$dir" .gmemtest-odirect.XXXXXX) || continue
    if dd if=/dev/zero of="$probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
      rm -f "$probe"
      echo "$dir"
      return 0
    fi
    rm -f "$probe"
  done
  return 1
}

if [[ -z "${GMEMTEST_DIRECT_IO_DIR:-}" ]]; then
  if GMEMTEST_DIRECT_IO_DIR=$(find_direct_io_dir); then
    export GMEMTEST_DIRECT_IO_DIR
    echo "direct I/O: GMEMTEST_DIRECT_IO_DIR=$GMEMTEST_DIRECT_IO_DIR ($(stat -f -c %T "$GMEMTEST_DIRECT_IO_DIR"))"
  else
    unset GMEMTEST_DIRECT_IO_DIR
    echo "direct I/O: no directory on a block filesystem takes O_DIRECT; the O_DIRECT cases will skip" \
         "(set GMEMTEST_DIRECT_IO_DIR to a directory on ext4/xfs)"
  fi
fi
