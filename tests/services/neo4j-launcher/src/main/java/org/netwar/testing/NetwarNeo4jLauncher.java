package org.netwar.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilder;
import org.neo4j.harness.Neo4jBuilders;
import org.neo4j.io.ByteUnit;

/**
 * Runs a real Neo4j server (community edition, in this JVM) for netwar's
 * integration tests.
 *
 * <p>Neo4j's server distribution is not published to Maven Central, but its
 * test harness is, and the harness embeds the complete database together with
 * the Bolt and HTTP servers. This class starts the harness as a long-running
 * process that clients reach over the network exactly as they would reach a
 * packaged Neo4j, and keeps it running until the process gets SIGTERM (or
 * SIGINT), when it shuts the database down cleanly.
 *
 * <p>Differences from the harness defaults, and why:
 * <ul>
 *   <li>Fixed ports on 127.0.0.1 (Bolt 7688, HTTP 7475 by default; not the
 *       standard 7687/7474, so that a Neo4j installed on the same machine is
 *       left alone) instead of random ones, so the tests can be told where to
 *       connect.</li>
 *   <li>Persistent data. The harness puts everything into a random folder
 *       that it deletes on shutdown; here the data directory is moved to the
 *       state directory given on the command line, so stopping and starting the
 *       server keeps the graph, which the tests rely on when they restart
 *       the server to prove that nothing is lost.</li>
 *   <li>Authentication enabled (the harness disables it). The user is
 *       {@code neo4j}; its password is set at every start, through the
 *       embedded API, to the value of NETWAR_TEST_NEO4J_PASSWORD, so clients
 *       never face Neo4j's "change the initial password" step.</li>
 * </ul>
 *
 * <p>Usage: {@code NetwarNeo4jLauncher STATE_DIR [BOLT_PORT [HTTP_PORT]]}.
 * The database lives in STATE_DIR/data; Neo4j's log files are copied to
 * STATE_DIR/logs when it stops; STATE_DIR/work is the harness's scratch space.
 * Environment: NETWAR_TEST_NEO4J_PASSWORD (default "netwar-test-password",
 * at least 8 characters, Neo4j's minimum), NETWAR_TEST_NEO4J_HOST
 * (listen address, default 127.0.0.1). An HTTP port of 0 disables HTTP.
 *
 * <p>Once Bolt accepts authenticated connections it prints one line,
 * {@code neo4j bolt://HOST:PORT ready}, which tests/services/neo4j.sh waits
 * for.
 */
public final class NetwarNeo4jLauncher {

    private static final String DEFAULT_PASSWORD = "netwar-test-password";

    private NetwarNeo4jLauncher() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 3) {
            System.err.println("usage: NetwarNeo4jLauncher STATE_DIR [BOLT_PORT [HTTP_PORT]]");
            System.exit(2);
        }
        Path stateDir = Path.of(args[0]).toAbsolutePath();
        Path dataDir = stateDir.resolve("data");
        Path logsDir = stateDir.resolve("logs");
        int boltPort = args.length > 1 ? Integer.parseInt(args[1]) : 7688;
        int httpPort = args.length > 2 ? Integer.parseInt(args[2]) : 7475;
        String host = envOr("NETWAR_TEST_NEO4J_HOST", "127.0.0.1");
        String password = envOr("NETWAR_TEST_NEO4J_PASSWORD", DEFAULT_PASSWORD);

        // The harness needs a working directory for its home folder and log
        // files; it creates a randomly named folder below it and deletes that
        // folder on shutdown. Only the data directory has to survive.
        Path workDir = stateDir.resolve("work");
        Files.createDirectories(dataDir);
        Files.createDirectories(workDir);

        SocketAddress bolt = new SocketAddress(host, boltPort);
        Neo4jBuilder builder = Neo4jBuilders.newInProcessBuilder(workDir)
                .withConfig(GraphDatabaseSettings.data_directory, dataDir)
                .withConfig(GraphDatabaseSettings.auth_enabled, true)
                // Small page cache: the test data is tiny and the machine
                // also runs OpenSearch and Elasticsearch.
                .withConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(64))
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, bolt)
                // Advertise the same address, so that routing drivers
                // (neo4j:// URIs) are sent back to this port.
                .withConfig(BoltConnector.advertised_address, bolt)
                .withConfig(HttpsConnector.enabled, false)
                // No usage reports: the server must not try to reach the
                // internet from a test machine.
                .withConfig(GraphDatabaseSettings.udc_enabled, false)
                // Netty's default graceful shutdown of the Bolt server waits
                // for a quiet period per thread pool, which made a stop take
                // over 12 seconds. Nothing runs on a test server that is
                // being stopped, so do not wait.
                .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(5));
        if (httpPort > 0) {
            SocketAddress http = new SocketAddress(host, httpPort);
            builder = builder
                    .withConfig(HttpConnector.enabled, true)
                    .withConfig(HttpConnector.listen_address, http)
                    .withConfig(HttpConnector.advertised_address, http);
        } else {
            builder = builder.withConfig(HttpConnector.enabled, false);
        }

        System.out.println("starting neo4j (data in " + dataDir + ")");
        Neo4j neo4j = builder.build();
        Path home = neo4j.config().get(GraphDatabaseSettings.neo4j_home);
        System.out.println("neo4j home (logs while running): " + home);

        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM and SIGINT run the shutdown hooks: close the database so
        // that its transaction log is flushed and the next start needs no
        // recovery.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("stopping neo4j");
            try {
                // close() would delete the harness folder together with
                // Neo4j's own log files; stop the database first and keep a
                // copy of the logs next to the data directory.
                neo4j.databaseManagementService().shutdown();
                copyLogs(home, logsDir);
                neo4j.close();
                System.out.println("neo4j stopped; its logs are in " + logsDir);
            } catch (RuntimeException e) {
                e.printStackTrace(System.out);
            } finally {
                stopped.countDown();
            }
        }, "neo4j-shutdown"));

        try {
            setPassword(neo4j, password);
        } catch (RuntimeException e) {
            System.out.println("could not set the password of user neo4j: " + e.getMessage());
            System.exit(1);
        }

        System.out.println("neo4j " + neo4j.boltURI() + " (listening on " + bolt + ")");
        if (httpPort > 0) {
            System.out.println("neo4j http " + neo4j.httpURI());
        }
        System.out.println("neo4j bolt://" + bolt + " ready");
        System.out.flush();

        stopped.await();
    }

    /**
     * Gives the built-in user {@code neo4j} the configured password, without
     * the "must change password" flag that a fresh Neo4j sets.
     *
     * <p>The embedded API runs with full privileges and no login, so it may
     * manage users. This runs at every start, which keeps the server in step
     * with the configured password even when the data directory predates a
     * change of it. Neo4j refuses to "change" a password to its current
     * value; on a restart with the same password that refusal is expected,
     * and only the flag is cleared.
     */
    private static void setPassword(Neo4j neo4j, String password) {
        var system = neo4j.databaseManagementService()
                .database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (RuntimeException e) {
            if (!String.valueOf(e.getMessage()).contains("Old password and new password cannot be the same")) {
                throw e;
            }
            system.executeTransactionally("ALTER USER neo4j SET PASSWORD CHANGE NOT REQUIRED");
        }
    }

    /** Copies neo4j.log and logs/*.log of the harness home into {@code target}. */
    private static void copyLogs(Path home, Path target) {
        try {
            Files.createDirectories(target);
            try (Stream<Path> files = Files.walk(home)) {
                for (Path log : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".log"))::iterator) {
                    Files.copy(log, target.resolve(log.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            System.out.println("could not keep the neo4j logs: " + e);
        }
    }

    private static String envOr(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
