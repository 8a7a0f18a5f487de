#!/usr/bin/env bash
# Makes sure the infrastructure the tests use is running on a Debian machine where PostgreSQL,
# Redis and RabbitMQ are installed from packages (the CI machine). Each one that does not answer
# is started with its package's own command. On other machines use `cargo xtask up`, which starts
# them with Docker Compose instead.
set -uo pipefail

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_for() { # name port
  for _ in $(seq 1 60); do answers "$2" && return 0; sleep 1; done
  echo "ci: $1 did not start on port $2" >&2
  return 1
}

if ! answers 5432; then
  echo "ci: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL 5432 || exit 1
fi
if ! answers 6379; then
  echo "ci: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 6379 || exit 1
fi
if ! answers 5672; then
  echo "ci: starting RabbitMQ"
  rabbitmq-server -detached
  wait_for RabbitMQ 5672 || exit 1
fi
echo "ci: PostgreSQL, Redis and RabbitMQ answer"
