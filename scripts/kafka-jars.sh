#!/usr/bin/env bash
# Puts Apache Kafka's jars (server, CLI tools, dependencies) from Maven Central into
# .cache/kafka-<version>/libs, once; prints that directory. Run Kafka's tools with
#   java -cp '.cache/kafka-<version>/libs/*' org.apache.kafka.tools.TopicCommand ...
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)
libs=".cache/kafka-$version/libs"
# The stamp names the pom's hash: editing the pom (a dependency's version) fetches again.
stamp="$libs/.complete-$(sha1sum scripts/kafka/pom.xml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    command -v mvn >/dev/null 2>&1 || { echo "kafka-jars: mvn not found (apt-get install maven)" >&2; exit 1; }
    echo "kafka-jars: fetching Apache Kafka $version and its dependencies from Maven Central into $libs" >&2
    rm -rf "$libs"
    mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$PWD/$libs" -DincludeScope=runtime >&2
    touch "$stamp" "$libs/.complete"
fi
echo "$PWD/$libs"
