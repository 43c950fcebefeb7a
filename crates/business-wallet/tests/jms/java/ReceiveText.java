// A plain JMS consumer (ActiveMQ's OpenWire client) used by the JMS channel tests: receives up
// to COUNT messages from a queue, optionally with a message selector, and prints one line per
// message: "TEXT <ce_type property> <body>" for a TextMessage, "OTHER <class>" otherwise. With
// -Dbw.properties=NAME,NAME... each message's line is preceded by one "PROPERTY <name> <value>"
// line per named string property (the value `null` when the message has none).
//
//   java [-Dbw.properties=NAMES] ReceiveText BROKER_URL QUEUE COUNT TIMEOUT_MS [SELECTOR]

import javax.jms.Connection;
import javax.jms.Message;
import javax.jms.MessageConsumer;
import javax.jms.Session;
import javax.jms.TextMessage;

import org.apache.activemq.ActiveMQConnectionFactory;

public class ReceiveText {
    public static void main(String[] args) throws Exception {
        String url = args[0];
        String queue = args[1];
        int count = Integer.parseInt(args[2]);
        long timeout = Long.parseLong(args[3]);
        String selector = args.length > 4 ? args[4] : null;
        String named = System.getProperty("bw.properties", "");
        String[] properties = named.isEmpty() ? new String[0] : named.split(",");
        Connection connection = new ActiveMQConnectionFactory(url).createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(session.createQueue(queue), selector);
            for (int i = 0; i < count; i++) {
                Message message = consumer.receive(timeout);
                if (message == null) {
                    break;
                }
                for (String property : properties) {
                    System.out.println("PROPERTY " + property + " " + message.getStringProperty(property));
                }
                if (message instanceof TextMessage) {
                    String type = message.getStringProperty("ce_type");
                    System.out.println("TEXT " + type + " " + ((TextMessage) message).getText());
                } else {
                    System.out.println("OTHER " + message.getClass().getName());
                }
            }
        } finally {
            connection.close();
        }
    }
}
