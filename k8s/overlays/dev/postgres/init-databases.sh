#!/bin/sh
# Runs once, on the first start of an empty PostgreSQL volume (docker-entrypoint-initdb.d):
# one role and one database per service, each database owned by its role, so no service can
# read another's tables. Passwords come from <SERVICE>_DB_PASSWORD. Used by docker-compose.yml
# and by the dev overlay's PostgreSQL.
set -eu
for service in identity tickets vault; do
  var=$(echo "${service}_DB_PASSWORD" | tr '[:lower:]' '[:upper:]')
  password=$(printenv "$var")
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v role="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
