// Drives the Apache ZooKeeper 3.8 Java client for golden/capture.py (run with the java source
// launcher). capture.py puts a recording proxy between this client and the server and cuts the
// connection when this program prints CUT1 / CUT2, so the client's reconnect re-sends its
// watches as setWatches (standard watches only) and then setWatches2 (with a persistent watch).
// Protocol: one marker line per step on stdout; capture.py answers each CUT with a line on stdin.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;

public class JavaClientDriver {
    static final long STATE_WAIT_SECONDS = 30;
    static final BlockingQueue<KeeperState> states = new LinkedBlockingQueue<>();

    static void awaitState(KeeperState wanted) throws Exception {
        while (true) {
            KeeperState state = states.poll(STATE_WAIT_SECONDS, TimeUnit.SECONDS);
            if (state == null) {
                throw new IllegalStateException("no " + wanted + " within " + STATE_WAIT_SECONDS + " s");
            }
            if (state == wanted) {
                return;
            }
        }
    }

    static void cut(BufferedReader stdin, String marker) throws Exception {
        System.out.println(marker);
        System.out.flush();
        stdin.readLine();
        awaitState(KeeperState.Disconnected);
        awaitState(KeeperState.SyncConnected);
    }

    public static void main(String[] args) throws Exception {
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        ZooKeeper zk = new ZooKeeper(args[0], 30000, event -> {
            if (event.getType() == org.apache.zookeeper.Watcher.Event.EventType.None) {
                states.add(event.getState());
            }
        });
        awaitState(KeeperState.SyncConnected);
        zk.create("/j", "hello".getBytes(StandardCharsets.UTF_8), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.getData("/j", true, null);
        zk.exists("/j/nope", true);
        zk.getChildren("/", true);
        // U+1F600 in an ACL id: the Java writer emits it as two 3-byte surrogate sequences
        // (a mutable list: ZooKeeper.validateACL calls contains(null), which List.of rejects)
        List<ACL> acl = new ArrayList<>(List.of(new ACL(ZooDefs.Perms.ALL, new Id("world", "\uD83D\uDE00"))));
        try {
            zk.create("/j/cesu", null, acl, CreateMode.PERSISTENT);
        } catch (KeeperException expected) {
            System.out.println("create /j/cesu: " + expected.code());
        }
        cut(stdin, "CUT1");
        zk.addWatch("/j", AddWatchMode.PERSISTENT_RECURSIVE);
        cut(stdin, "CUT2");
        zk.close();
        System.out.println("DONE");
    }
}
