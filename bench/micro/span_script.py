#!/usr/bin/python3
# Server time per entry of the span's batch script (StreamPublisher.SPAN_SCRIPT) at two commits, alternated on one
# idle redis-server of its own (INFO commandstats, 300 batches of 300 entries over 6 streams per round, 6 rounds):
#   bench/micro/span_script.py [OLD_REV [NEW_REV]]     (default e3f6613 and HEAD; needs python3-redis, redis-server)
# A script that reads KEYS[tonumber(ARGV[i])] takes an index per entry (before d40a806), else a count per stream.
import os, random, re, socket, statistics, subprocess, sys, textwrap, time
import redis

def script(rev):
    src = subprocess.run(['git', 'show', rev + ':stargazer-bus/src/main/java/io/stargazer/bus/internal/StreamPublisher.java'],
                         capture_output=True, text=True, check=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout
    base = re.search(r'PLAIN_XADD_ARGS = """\n(.*?)""";', src, re.S).group(1)
    span = re.search(r'SPAN_SCRIPT = PLAIN_XADD_ARGS \+ """\n(.*?)""";', src, re.S).group(1)
    return textwrap.dedent(base) + textwrap.dedent(span)

def main():
    revs = (sys.argv[1:] + ['e3f6613', 'HEAD'][len(sys.argv[1:]):])[:2]
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    server = subprocess.Popen(['redis-server', '--port', str(port), '--save', '', '--appendonly', 'no'], stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping(); break
            except redis.ConnectionError:
                time.sleep(0.05)
        keys = [f'sg:stream:inbound:{{part-{i}-of-6}}' for i in range(6)]
        payload, trace = b'x' * 160, b'0123456789abcdef0123456789abcdef'
        rnd = random.Random(1)
        def args(indexed, parts):
            if indexed:
                a = ['0']
                for k in parts: a += [str(k + 1), payload, trace]
                return keys, a
            a, ks = ['0'], []
            for k in range(6):
                c = parts.count(k)
                if c: ks.append(keys[k]); a += [str(c)] + [payload, trace] * c
            return ks, a
        contenders = []
        for rev in revs:
            text = script(rev)
            contenders.append((rev, r.script_load(text), 'KEYS[tonumber(' in text))
        results = {rev: [] for rev in revs}
        for _ in range(6):
            for rev, sha, indexed in contenders:
                r.flushall(); r.config_resetstat()
                for _ in range(300):
                    ks, a = args(indexed, [rnd.randrange(6) for _ in range(300)])
                    r.evalsha(sha, len(ks), *ks, *a)
                st = r.info('commandstats')['cmdstat_evalsha']
                results[rev].append(st['usec'] / (st['calls'] * 300))
        for rev, v in results.items():
            print(f'{rev}: µs per entry median {statistics.median(v):.3f} (min {min(v):.3f}, max {max(v):.3f})')
    finally:
        server.terminate()

main()
