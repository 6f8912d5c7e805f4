// credit_ledger from Java (JDBC): pay for the work in the app's own transaction.
//
//     javac -cp /usr/share/java/postgresql.jar -d classes *.java
//     java -cp classes:/usr/share/java/postgresql.jar BillImage
//
// Connects with PGHOST / PGPORT / PGUSER / PGDATABASE (PGHOST may be a socket directory).
// The pattern: in one transaction, credit_authorize() first; only when it is approved does the
// app do the work and INSERT its own row. A decline writes no app row (and debits nothing); an
// app error after the authorization rolls back the debit with everything else.
// Every outcome is checked; exit status 1 on a failure.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

public final class BillImage {
    record Auth(long id, boolean approved, String reason, BigDecimal cost) {}

    /** Stands in for the image model: the expensive call the credits pay for. */
    static String render(String prompt) {
        return "https://cdn.example.com/" + UUID.randomUUID() + ".png";
    }

    static Auth generateImage(Connection conn, String customer, String prompt, String requestId) throws SQLException {
        conn.setAutoCommit(false);
        try (PreparedStatement authorize = conn.prepareStatement(
                 "SELECT * FROM credit_authorize(wallet => ?, action => 'image.generate', idempotency_key => ?)");
             PreparedStatement insert = conn.prepareStatement(
                 "INSERT INTO images (customer, prompt, url, authorization_id) VALUES (?, ?, ?, ?)")) {
            authorize.setString(1, customer);
            authorize.setString(2, requestId);
            Auth auth;
            try (ResultSet rs = authorize.executeQuery()) {
                rs.next();
                auth = new Auth(rs.getLong("authorization_id"), rs.getBoolean("approved"),
                                rs.getString("reason"), rs.getBigDecimal("cost"));
            }
            if (auth.approved()) { // declined: nothing debited, no model call, no app row
                insert.setString(1, customer);
                insert.setString(2, prompt);
                insert.setString(3, render(prompt));
                insert.setLong(4, auth.id());
                insert.executeUpdate();
            }
            conn.commit();
            return auth;
        } catch (SQLException e) {
            conn.rollback(); // the debit goes with everything else
            throw e;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    // ------------------------------------------------------------------ checks

    static final List<String> failures = new ArrayList<>();

    static void check(boolean ok, String what) {
        System.out.println("  " + (ok ? "ok  " : "FAIL") + " " + what);
        if (!ok) failures.add(what);
    }

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    /** libpq's environment variables; a PGHOST starting with / is a Unix socket directory. */
    static Connection connect() throws SQLException {
        String user = env("PGUSER", System.getProperty("user.name"));
        String host = env("PGHOST", "localhost");
        String port = env("PGPORT", "5432");
        Properties props = new Properties();
        props.setProperty("user", user);
        if (System.getenv("PGPASSWORD") != null) props.setProperty("password", System.getenv("PGPASSWORD"));
        props.setProperty("ApplicationName", "credit_ledger java example");
        if (host.startsWith("/")) {
            props.setProperty("socketFactory", "UnixSocketFactory");
            props.setProperty("socketFactoryArg", host + "/.s.PGSQL." + port);
            host = "localhost";
        }
        return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/" + env("PGDATABASE", user), props);
    }

    static BigDecimal balance(Connection conn, String customer) throws SQLException {
        try (PreparedStatement st = conn.prepareStatement("SELECT credit_balance(?)")) {
            st.setString(1, customer);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getBigDecimal(1);
            }
        }
    }

    static long images(Connection conn, String customer) throws SQLException {
        try (PreparedStatement st = conn.prepareStatement("SELECT count(*) FROM images WHERE customer = ?")) {
            st.setString(1, customer);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    static boolean is(BigDecimal a, long b) {
        return a != null && a.compareTo(BigDecimal.valueOf(b)) == 0;
    }

    static void run(Connection conn) throws SQLException {
        String customer = "cust_java_" + UUID.randomUUID().toString().substring(0, 8);
        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TABLE IF NOT EXISTS images ("
                + " id bigserial PRIMARY KEY, customer text NOT NULL,"
                + " prompt text NOT NULL CHECK (prompt <> ''), url text NOT NULL,"
                + " authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())");
            st.execute("SELECT credit_rate_set(action => 'image.generate', credits => 4, unit => 'image')");
        }
        try (PreparedStatement st = conn.prepareStatement("SELECT credit_wallet_create(wallet => ?)")) {
            st.setString(1, customer);
            st.execute();
        }
        try (PreparedStatement st = conn.prepareStatement(
                 "SELECT credit_grant(wallet => ?, amount => 10, category => 'promotional')")) {
            st.setString(1, customer);
            st.execute();
        }
        System.out.println("java: wallet " + customer + " has " + balance(conn, customer) + " credits; an image costs 4");

        Auth auth = generateImage(conn, customer, "a red fox in the snow", "req-1");
        check(auth.approved() && is(auth.cost(), 4), "image 1 approved, cost " + auth.cost());
        check(is(balance(conn, customer), 6) && images(conn, customer) == 1, "balance 10 -> 6, one images row");

        try {
            generateImage(conn, customer, "", "req-2"); // the app's INSERT violates its CHECK
            check(false, "an empty prompt should fail the app's insert");
        } catch (SQLException e) {
            check("23514".equals(e.getSQLState()), "app error after authorizing: " + e.getSQLState() + " " + e.getMessage().lines().findFirst().orElse(""));
        }
        check(is(balance(conn, customer), 6) && images(conn, customer) == 1, "ROLLBACK: balance still 6, still one row");

        generateImage(conn, customer, "a lighthouse at dusk", "req-3");
        check(is(balance(conn, customer), 2) && images(conn, customer) == 2, "image 2 approved: balance 2, two rows");

        auth = generateImage(conn, customer, "a third picture", "req-4");
        check(!auth.approved() && "insufficient_credits".equals(auth.reason()), "image 3 declined: " + auth.reason());
        check(is(balance(conn, customer), 2) && images(conn, customer) == 2, "declined: nothing debited, no app row");

        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM credit_verify()")) {
            rs.next();
            check(rs.getLong(1) == 0, "credit_verify() is empty");
        }
    }

    public static void main(String[] args) {
        try (Connection conn = connect()) {
            run(conn);
        } catch (SQLException e) {
            System.out.println("java: error: " + e.getSQLState() + " " + e.getMessage());
            System.exit(1);
        }
        if (!failures.isEmpty()) {
            System.out.println("java: " + failures.size() + " check(s) FAILED");
            System.exit(1);
        }
        System.out.println("java: all checks passed");
    }
}
