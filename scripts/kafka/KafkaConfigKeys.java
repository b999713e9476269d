// Prints the name of every broker and controller configuration key Apache Kafka knows, sorted,
// one a line: the names of KafkaConfig's ConfigDef (AbstractKafkaConfig.CONFIG_DEF). Run by
// scripts/kafka-config-keys.sh, which writes netd/src/config/kafka_keys.txt.
import java.util.TreeSet;

public class KafkaConfigKeys {
    public static void main(String[] arguments) {
        for (String name : new TreeSet<>(org.apache.kafka.server.config.AbstractKafkaConfig.CONFIG_DEF.names())) {
            System.out.println(name);
        }
    }
}
