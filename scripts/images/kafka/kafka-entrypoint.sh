#!/bin/bash
# Writes server.properties from the environment, formats the log dir on first
# start, then runs the broker (exec: SIGTERM from the kubelet reaches the JVM,
# which stops Kafka cleanly).
#   KAFKA_ADVERTISED_HOST  the name clients reach this broker by (required)
#   KAFKA_PORT             client listener port (default 9092)
#   KAFKA_CONTROLLER_PORT  the KRaft controller's port, on localhost (default 9093)
#   KAFKA_CLUSTER_ID       cluster id used when formatting (required on first start)
#   KAFKA_DATA_DIR         log dir (default /var/lib/kafka/data)
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms256m -Xmx512m)
#   KAFKA_CFG_<NAME>       any broker property, dots as underscores (KAFKA_CFG_NUM_PARTITIONS=6)
set -euo pipefail
: "${KAFKA_ADVERTISED_HOST:?set KAFKA_ADVERTISED_HOST}"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
data="${KAFKA_DATA_DIR:-/var/lib/kafka/data}"
config=/tmp/server.properties
mkdir -p "$data"
{
    echo "process.roles=broker,controller"
    echo "node.id=1"
    echo "controller.quorum.voters=1@localhost:$controller_port"
    echo "listeners=PLAINTEXT://:$port,CONTROLLER://localhost:$controller_port"
    echo "advertised.listeners=PLAINTEXT://$KAFKA_ADVERTISED_HOST:$port"
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    echo "log.dirs=$data"
    env | sed -n 's/^KAFKA_CFG_\([A-Z0-9_]*\)=\(.*\)$/\1=\2/p' | while IFS='=' read -r name value; do
        echo "$(echo "$name" | tr 'A-Z_' 'a-z.')=$value"
    done
} > "$config"
classpath="/opt/kafka/libs/*"
if [ ! -f "$data/meta.properties" ]; then
    : "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID to format a new log dir}"
    java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties \
        -cp "$classpath" kafka.tools.StorageTool format --ignore-formatted \
        --cluster-id "$KAFKA_CLUSTER_ID" --config "$config"
fi
# shellcheck disable=SC2086
exec java -server ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -Dkafka.logs.dir=/tmp \
    -cp "$classpath" kafka.Kafka "$config"
