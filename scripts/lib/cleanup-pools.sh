# Sourced by scripts: unmounts every filesystem mounted below a directory, detaches the
# loop devices whose backing files live there, and removes the directory. Touches nothing
# outside it.
cleanup_pools() {
  local root=$1
  [ -n "$root" ] && [ -d "$root" ] || return 0
  local target
  # Deepest first, so nested mounts come off before their parents.
  while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -F "$root/" | sort -r)
  local dev file
  while read -r dev file; do
    case "$file" in "$root"/*) losetup -d "$dev" 2>/dev/null || true ;; esac
  done < <(losetup -n -O NAME,BACK-FILE 2>/dev/null | sed 's/ (deleted)$//')
  rm -rf "$root"
}
