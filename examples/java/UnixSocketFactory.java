import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import javax.net.SocketFactory;

/**
 * Lets the PostgreSQL JDBC driver (TCP only) talk to PostgreSQL's Unix-domain socket, with the
 * JDK's own Unix-domain {@link SocketChannel} (Java 16+), no extra jar. Only needed when the
 * server listens on a socket alone (as the test clusters do); over TCP, leave it out.
 *
 * <pre>
 * props.setProperty("socketFactory", "UnixSocketFactory");
 * props.setProperty("socketFactoryArg", "/run/postgresql/.s.PGSQL.5432");
 * </pre>
 */
public final class UnixSocketFactory extends SocketFactory {
    private final Path path;

    /** pgjdbc calls this with the value of socketFactoryArg: the socket file. */
    public UnixSocketFactory(String socketFile) {
        this.path = Path.of(socketFile);
    }

    @Override
    public Socket createSocket() {
        return new UnixSocket(path);
    }

    @Override
    public Socket createSocket(String host, int port) throws IOException {
        return connected();
    }

    @Override
    public Socket createSocket(String host, int port, InetAddress localHost, int localPort) throws IOException {
        return connected();
    }

    @Override
    public Socket createSocket(InetAddress host, int port) throws IOException {
        return connected();
    }

    @Override
    public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort) throws IOException {
        return connected();
    }

    private Socket connected() throws IOException {
        Socket s = createSocket();
        s.connect(null, 0);
        return s;
    }

    /** A java.net.Socket face on a Unix-domain SocketChannel; TCP options are no-ops. */
    private static final class UnixSocket extends Socket {
        private final Path path;
        private SocketChannel channel;
        private InputStream in;
        private OutputStream out;
        private int soTimeout;

        UnixSocket(Path path) {
            this.path = path;
        }

        @Override
        public void connect(SocketAddress ignored) throws IOException {
            connect(ignored, 0);
        }

        @Override
        public void connect(SocketAddress ignored, int timeout) throws IOException {
            channel = SocketChannel.open(UnixDomainSocketAddress.of(path));
            in = Channels.newInputStream(channel);
            out = Channels.newOutputStream(channel);
        }

        @Override
        public boolean isConnected() {
            return channel != null && channel.isConnected();
        }

        @Override
        public boolean isClosed() {
            return channel != null && !channel.isOpen();
        }

        @Override
        public InputStream getInputStream() throws IOException {
            if (in == null) throw new IOException("not connected");
            return in;
        }

        @Override
        public OutputStream getOutputStream() throws IOException {
            if (out == null) throw new IOException("not connected");
            return out;
        }

        @Override
        public synchronized void close() throws IOException {
            if (channel != null) channel.close();
        }

        @Override
        public void shutdownInput() throws IOException {
            if (channel != null) channel.shutdownInput();
        }

        @Override
        public void shutdownOutput() throws IOException {
            if (channel != null) channel.shutdownOutput();
        }

        @Override
        public void setTcpNoDelay(boolean on) {}

        @Override
        public boolean getTcpNoDelay() {
            return true;
        }

        @Override
        public void setKeepAlive(boolean on) {}

        @Override
        public boolean getKeepAlive() {
            return false;
        }

        @Override
        public synchronized void setSoTimeout(int timeout) {
            soTimeout = timeout; // not enforced: reads block until the server answers
        }

        @Override
        public synchronized int getSoTimeout() {
            return soTimeout;
        }

        @Override
        public synchronized void setReceiveBufferSize(int size) {}

        @Override
        public synchronized void setSendBufferSize(int size) {}

        @Override
        public String toString() {
            return "UnixSocket[" + path + "]";
        }
    }
}
