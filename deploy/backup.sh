#!/usr/bin/env bash
# Back up Paris avenir: the database first, then the encrypted documents. See
# docs/operations.md (why in this order, where the keys go: never into the backup).
#
#   deploy/backup.sh DESTINATION
#
# DESTINATION must not exist yet (one folder per backup). Reads the application's own
# PARIS_AVENIR_DATABASE_URL and PARIS_AVENIR_UPLOAD_DIR; runs while the platform serves.
# Needs pg_dump (Debian's postgresql-client, same major version as the server or newer) for
# PostgreSQL, python3 for SQLite, and rsync.
set -euo pipefail

destination=${1:?usage: backup.sh DESTINATION}
url=${PARIS_AVENIR_DATABASE_URL:?PARIS_AVENIR_DATABASE_URL is not set}
uploads=${PARIS_AVENIR_UPLOAD_DIR:?PARIS_AVENIR_UPLOAD_DIR is not set}
[ -d "$uploads" ] || { echo "backup.sh: no upload directory at $uploads" >&2; exit 2; }

umask 077 # the backup holds personal data (encrypted, but still)
mkdir "$destination" # fails if it exists: two backups are never mixed

# 1. The database: one consistent snapshot, taken while the platform runs.
case "$url" in
  postgres://* | postgresql://* | postgresql+*://*)
    # pg_dump reads libpq URLs: without SQLAlchemy's "+driver".
    pg_dump --format=custom --file="$destination/database.dump" "postgresql://${url#*://}"
    ;;
  sqlite:///*)
    # SQLite's online backup API (what sqlite3's .backup does): a consistent copy while the
    # platform writes, never a cp of a live file and its write-ahead log.
    python3 - "${url#sqlite:///}" "$destination/database.sqlite3" <<'PY'
import pathlib, sqlite3, sys
source, target = sys.argv[1], sys.argv[2]
if not pathlib.Path(source).is_file():
    sys.exit(f"backup.sh: no SQLite database at {source}")
with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
    live.backup(copy)
PY
    ;;
  *)
    echo "backup.sh: PARIS_AVENIR_DATABASE_URL is neither PostgreSQL nor SQLite" >&2
    exit 2
    ;;
esac

# 2. Then the files, as they are on disk (Fernet tokens; names are the rows' storage keys).
# After the dump, every row it holds has its file already on disk; a file added since has no
# row and is swept an hour after the restore, a file deleted since is reported by the sweep.
# rsync's 24: a file vanished while copying (a deletion committed meanwhile) — not an error.
status=0
rsync --archive "$uploads/" "$destination/uploads/" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 24 ]; then exit "$status"; fi

echo "backup.sh: $destination holds the database and $(find "$destination/uploads" -type f | wc -l) document files"
