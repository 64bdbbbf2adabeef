// The `stargazer` command line: its subcommands run node parts (NodeCommands) or operator tools (OperatorCommands).
// Settings come from flags, then SG_* variables, then defaults (picocli, with EnvironmentDefaults).
package io.stargazer.node;

import io.stargazer.bus.ConfigException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point. {@link #run} is the whole command line as a function (arguments and environment in, exit code out),
 * so tests run it in-process; {@link #main} adds {@code System.exit}. Every failure the operator can fix (a bad flag,
 * an unreadable setting, an unreachable server) ends as one line on stderr and a non-zero exit code: 2 for usage
 * errors, 1 for the rest.
 */
@Command(name = "stargazer", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "The Stargazer node: an event bus on Redis Streams with a web chat, a worker and a tools service.",
        subcommands = {NodeCommands.Standalone.class, NodeCommands.Gateway.class, NodeCommands.WorkerCommand.class,
                NodeCommands.ToolsCommand.class, NodeCommands.RelayCommand.class, OperatorCommands.Streams.class, OperatorCommands.Publish.class,
                OperatorCommands.Tail.class, OperatorCommands.Acl.class, OperatorCommands.Provision.class, DeadCommands.Dead.class, DeadCommands.Pause.class,
                DeadCommands.Resume.class, CommandLine.HelpCommand.class})
public final class Main implements Callable<Integer> {
    static final int USAGE = 2;
    static final int FAILED = 1;

    /** The environment the command line runs in (the process's, or a test's). */
    final Map<String, String> env;
    final PrintStream out;
    private final EnvironmentDefaults defaults;

    Main(Map<String, String> env, PrintStream out) {
        this.env = env;
        this.out = out;
        this.defaults = new EnvironmentDefaults(env);
    }

    public static void main(String[] args) {
        System.exit(run(args, System.getenv(), System.out, System.err));
    }

    /** Runs one command line; server commands return only when the node stops. */
    public static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err) {
        if (args.length > 0 && List.of("streams", "publish", "tail", "dead", "pause", "resume", "provision").contains(args[0])) {
            // Operator tools print their own output; only problems should show up from the library's logging.
            System.setProperty("stargazer.log.level", "warn"); // read by logback.xml
        }
        Main main = new Main(env, out);
        CommandLine cl = new CommandLine(main);
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        cl.setDefaultValueProvider(main.defaults);
        cl.setParameterExceptionHandler((e, a) -> {
            String variable = main.defaults.fromVariable(e);
            err.println("stargazer: " + (variable != null ? oneLine(variable) : oneLine(e.getMessage()) + " (see '"
                    + e.getCommandLine().getCommandSpec().qualifiedName() + " --help')"));
            return USAGE;
        });
        cl.setExecutionExceptionHandler((e, c, p) -> {
            err.println("stargazer: " + describe(e));
            return e instanceof ConfigException ? USAGE : FAILED;
        });
        return cl.execute(args);
    }

    @Override
    public Integer call() {
        new CommandLine(this).usage(out);
        return USAGE;
    }

    static String describe(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            m = e.getClass().getSimpleName();
        }
        return oneLine(m);
    }

    static String oneLine(String s) {
        return s.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }

    /** A variable of the environment {@link #run} was given, or null when it is unset or blank. */
    String env(String name) {
        return defaults.value(name);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"stargazer " + (v == null ? "(development build)" : v)};
        }
    }
}
