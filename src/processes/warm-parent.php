<?php
// The warm parent (src/processes/warm.ts starts one per PHP program + -d options): a PHP CLI
// process that has paid PHP's start-up once and forks a child per task. The child becomes the
// task's script exactly as `php [-d ...] script.php args` would run it, and ends without PHP's
// module teardown (the ~5-20 ms of copy-on-write page faults a forked PHP spends freeing what
// it inherited). This process never runs user code.
//
// Usage: php [-d ...] -d auto_append_file=PLACEHOLDER warm-parent.php serve SOCKET
//        php [-d ...] -d auto_append_file=PLACEHOLDER warm-parent.php probe
// (`noop` is what its own probe children run.)
// `probe` checks that this PHP can do all of the below and prints one JSON line.
// `serve`: control requests arrive on fd 0 (one JSON object a line), replies leave on fd 3;
// fd 1 and 2 are logs. EOF on fd 0 (the launcher is gone): every child's group is SIGKILLed
// and the parent exits.
//
// How the child becomes the script (each point is checked at start-up; a PHP where one fails
// is not used, see the probe):
// - Script at the top level: the parent is started with auto_append_file=PLACEHOLDER, so PHP's
//   php_execute_script() queued an "append" file handle (on its C stack) whose name is an
//   emalloc'ed string holding the placeholder. The child writes the script's real path into
//   that string, turns the handle into what the CLI makes of its script (an open FILE *, its
//   real path as opened_path: no PHP stream, no resource id), blanks the placeholder in the ini
//   entry, and returns from this file: PHP then compiles and runs the script as the next
//   top-level file of the request - global scope, no frame of ours in any backtrace, uncaught
//   exceptions, exit() and the whole request shutdown (shutdown functions, destructors, output
//   buffers, RSHUTDOWN) done by PHP itself.
// - Exit without module teardown: PHP shuts modules down last-registered first; in the child
//   the first one's MSHUTDOWN becomes nice(19), the second one's close(255), every other one's
//   usleep(255) (PHP passes the module's `type` as the first argument: set to 19, 255, 255).
//   fd 255 is the write end of a pipe whose read end this parent polls: on its EOF the parent
//   reads EG(exit_status) from /proc/CHILD/mem (the offset is found at start-up with probe
//   children that exit with marker values) and SIGKILLs the child, which meanwhile runs at the
//   lowest priority and sleeps. Should the parent come too late, the child has exited normally
//   and its own exit status is the answer. A grandchild the script forks inherits all this and
//   merely exits a little later, without module teardown (fd 255 is just another fd there).
// - Environment: environ is rebuilt from the task's env; the original env block (what
//   /proc/PID/environ shows) is rewritten in place with it (the parent was started with a
//   padding variable to leave room), and argv's area with the task's command line (both padded
//   with NUL bytes up to their original size).
// - $argv, $argc, $_SERVER (in the CLI's order), a fresh request time, a clean global scope and
//   included-files list, object handles and resource ids as a fresh CLI hands them out, signal
//   mask and handlers reset, its own session and process group (setsid), stdio: three unix
//   sockets the parent connected to the launcher's listener (socketpairs in a spawned script:
//   the same kind of descriptor).
//
// Everything lives in the closure below: the parent declares no functions, classes, constants
// or globals a script could see. The parent creates no PHP resources (raw descriptors through
// FFI) and frees no object before a child has forked, so that the child can free them all in
// descending handle order and the script's objects get #1, #2, ... like in a fresh CLI.

$__warm_main = static function (array $args): array {
    $mode = $args[1] ?? '';
    if ($mode === 'noop') {
        exit(0);
    }
    $placeholder = (string) ini_get('auto_append_file');
    $say = static function (string $msg): void {
        fwrite(STDERR, "warm-parent: $msg\n");
    };

    // --- what this PHP must have ------------------------------------------------------------
    $unfit = null;
    foreach (['pcntl', 'posix', 'FFI'] as $ext) {
        if (!extension_loaded($ext)) {
            $unfit ??= "PHP lacks $ext";
        }
    }
    foreach (['pcntl_fork', 'pcntl_waitpid', 'pcntl_sigprocmask', 'posix_setsid', 'posix_kill'] as $fn) {
        if (!function_exists($fn)) {
            $unfit ??= "PHP lacks $fn() (disable_functions?)";
        }
    }
    if (PHP_VERSION_ID < 80100) {
        $unfit ??= 'PHP ' . PHP_VERSION . ' is older than 8.1';
    }
    if (strlen($placeholder) < 256 || strpos($placeholder, '/aggregator-warm-') === false) {
        $unfit ??= 'started without the auto_append_file placeholder';
    }
    if ((int) (posix_getrlimit()['soft openfiles'] ?? 0) < 256) {
        $unfit ??= 'open-files limit below 256';
    }
    $ffi = null;
    if ($unfit === null) {
        try {
            // Pointers are declared as intptr_t: plain integers cross the boundary, so no CData
            // object is made per call (see the object-handle note above).
            $ffi = FFI::cdef('
                typedef long ssize_t;
                typedef unsigned long size_t;
                intptr_t memcpy(intptr_t dst, intptr_t src, size_t n);
                intptr_t memmove(intptr_t dst, const char *src, size_t n);
                intptr_t malloc(size_t n);
                intptr_t _emalloc(size_t n);
                intptr_t fopen(const char *path, const char *mode);
                int fclose(intptr_t fp);
                intptr_t dlsym(intptr_t handle, const char *name);
                int open(const char *path, int flags);
                int close(int fd);
                ssize_t read(int fd, intptr_t buf, size_t n);
                ssize_t write(int fd, const char *buf, size_t n);
                ssize_t pread(int fd, intptr_t buf, size_t n, long off);
                int dup2(int from, int to);
                int dup3(int from, int to, int flags);
                int pipe2(intptr_t fds, int flags);
                int socket(int domain, int type, int protocol);
                int connect(int fd, const char *addr, unsigned int len);
                int poll(intptr_t fds, unsigned long n, int timeout);
                int signalfd(int fd, intptr_t mask, int flags);
                int sigemptyset(intptr_t set);
                int sigaddset(intptr_t set, int sig);
                int prctl(int op, unsigned long a, unsigned long b, unsigned long c, unsigned long d);
                intptr_t __errno_location(void);
                double sapi_get_request_time(void);
                intptr_t zend_hash_str_find(intptr_t ht, const char *key, size_t len);
                int zend_hash_str_del(intptr_t ht, const char *key, size_t len);
                void _exit(int status);
            ');
        } catch (Throwable $e) {
            $unfit = 'FFI is not usable (' . $e->getMessage() . ')';
        }
    }
    if ($unfit !== null) {
        if ($mode === 'probe') {
            echo json_encode(['ok' => false, 'reason' => $unfit]), "\n";
            exit(0);
        }
        $say("unfit: $unfit");
        exit(3);
    }

    // Linux x86-64 / aarch64 values (the probe proves them by using them).
    $O_RDONLY = 0; $O_CLOEXEC = 0x80000; $SFD_CLOEXEC = 0x80000;
    $AF_UNIX = 1; $SOCK_STREAM = 1; $SOCK_CLOEXEC = 0x80000;
    $POLLIN = 1; $POLLHUP = 0x10; $POLLERR = 0x8; $POLLNVAL = 0x20;
    $PR_SET_PDEATHSIG = 1;
    $HOOK_FD = 255;

    // One scratch buffer for every read: its address is taken once.
    $BUF_SIZE = 1 << 16;
    $buf = $ffi->new("char[$BUF_SIZE]");
    $keep = [FFI::addr($buf)];        // objects made here live until a child frees them all
    $keep[] = FFI::cast('intptr_t', $keep[0]);
    $bufAddr = $keep[1]->cdata;
    $sym = static fn (string $name): int => (int) $ffi->dlsym(0, $name);
    /** Bytes of this process's memory. */
    $peek = static function (int $addr, int $n) use ($ffi, $buf, $bufAddr, $BUF_SIZE): string {
        $out = '';
        while ($n > 0) {
            $k = min($n, $BUF_SIZE);
            $ffi->memcpy($bufAddr, $addr, $k);
            $out .= FFI::string($buf, $k);
            $addr += $k;
            $n -= $k;
        }
        return $out;
    };
    $poke = static function (int $addr, string $bytes) use ($ffi): void {
        $ffi->memmove($addr, $bytes, strlen($bytes));
    };
    $errno = static fn (): int => unpack('l', $peek((int) $ffi->__errno_location(), 4))[1];
    /** A whole small file (/proc entries) without a PHP stream. */
    $slurp = static function (string $path) use ($ffi, $buf, $bufAddr, $BUF_SIZE, $O_RDONLY, $O_CLOEXEC): ?string {
        $fd = $ffi->open($path, $O_RDONLY | $O_CLOEXEC);
        if ($fd < 0) {
            return null;
        }
        $out = '';
        while (($n = $ffi->read($fd, $bufAddr, $BUF_SIZE)) > 0) {
            $out .= FFI::string($buf, $n);
        }
        $ffi->close($fd);
        return $out;
    };
    /** Bytes of another process's memory (a child of ours), or null. */
    $peekChild = static function (int $pid, int $addr, int $n) use ($ffi, $buf, $bufAddr, $O_RDONLY, $O_CLOEXEC): ?string {
        $fd = $ffi->open("/proc/$pid/mem", $O_RDONLY | $O_CLOEXEC);
        if ($fd < 0) {
            return null;
        }
        $got = $ffi->pread($fd, $bufAddr, $n, $addr);
        $ffi->close($fd);
        return $got === $n ? FFI::string($buf, $n) : null;
    };

    // --- where things are in this process -----------------------------------------------
    $problems = [];
    $EG = $sym('executor_globals');
    $SG = $sym('sapi_globals');
    $MR = $sym('module_registry');
    $closeFn = $sym('close');
    if ($EG === 0 || $SG === 0 || $MR === 0 || $closeFn === 0 || $sym('nice') === 0 || $sym('usleep') === 0) {
        $problems[] = 'engine symbols not found';
    }
    $exts = get_loaded_extensions();
    // module_registry is a HashTable: nNumOfElements at 28 (the layout of every PHP 7/8).
    $mrHead = $MR ? $peek($MR, 40) : '';
    $mrCount = $mrHead === '' ? -1 : unpack('V', $mrHead, 28)[1];
    if ($mrCount !== count($exts)) {
        $problems[] = "module_registry does not look like a HashTable ($mrCount entries for " . count($exts) . ' extensions)';
    }
    /** A module's zend_module_entry, checked: size at 0, name at 32, started at 136, type at 140. */
    $moduleEntry = static function (string $ext) use ($ffi, $MR, $peek): ?array {
        $zv = $MR ? (int) $ffi->zend_hash_str_find($MR, strtolower($ext), strlen($ext)) : 0;
        $entry = $zv ? unpack('P', $peek($zv, 8))[1] : 0;
        if ($entry === 0) {
            return null;
        }
        $me = $peek($entry, 168);
        $namePtr = unpack('P', $me, 32)[1];
        if (unpack('v', $me)[1] !== 168 || !$namePtr || $peek($namePtr, strlen($ext) + 1) !== "$ext\0"
            || unpack('l', $me, 136)[1] !== 1 || ord($me[140]) !== 1) {
            return null;
        }
        return [$entry, unpack('P', $me, 56)[1]];
    };
    // Modules are shut down last-registered first, after the whole request shutdown. In the
    // child, the first one's MSHUTDOWN becomes nice(19) (`type`, the argument PHP passes, set to
    // 19): what is left of its exit runs only when nothing else wants the CPU, so the parent gets
    // to read its status before it is done. The second one's becomes close(255): the hook's EOF.
    // Every other module's becomes usleep(255): up to ~8 ms more for the parent to come. A
    // grandchild the script forked inherits all this and merely exits a little later, without
    // the module teardown (fd 255 is just another descriptor there).
    $hooked = [];
    foreach (array_slice(array_reverse($exts), 0, 2) as $ext) {
        $hooked[] = $moduleEntry($ext)[0] ?? 0;
    }
    if (count($hooked) < 2 || in_array(0, $hooked, true)) {
        $problems[] = 'the last two zend_module_entry structures were not found or have an unexpected layout';
    }
    [$niceEntry, $entry] = $hooked + [0, 0];
    $lastExt = implode(', ', array_slice(array_reverse($exts), 0, 2));
    $niceFn = $sym('nice');
    $usleepFn = $sym('usleep');
    $lingerEntries = [];
    foreach (array_slice(array_reverse($exts), 2) as $ext) {
        $me = $moduleEntry($ext);
        if ($me !== null) {
            $lingerEntries[] = $me[0];
        }
    }
    // SG(global_request_time): the double equal to sapi_get_request_time().
    $rt = pack('d', $ffi->sapi_get_request_time());
    $sgBytes = $SG ? $peek($SG, 4096) : '';
    $rtOff = strpos($sgBytes, $rt);
    if ($rtOff === false || $rtOff % 8 !== 0 || strpos($sgBytes, $rt, $rtOff + 1) !== false) {
        $problems[] = 'SG(global_request_time) not found';
        $rtOff = -1;
    }
    // SG(request_info).path_translated: the CLI's real path of its script (this file), from
    // which PHP takes getmyinode(), getlastmod(), getmyuid(), get_current_user(). Found below,
    // as a pointer in sapi_globals to that path; the child points it at the script's.
    // Private writable memory (PHP's chunks, the malloc heap), and everything readable.
    $private = [];
    $readable = [];
    foreach (explode("\n", $slurp('/proc/self/maps') ?? '') as $line) {
        // "from-to perms offset dev inode [path]"
        $f = preg_split('/\s+/', trim($line));
        if (count($f) < 5 || !str_contains($f[0], '-')) {
            continue;
        }
        [$from, $to] = array_map('hexdec', explode('-', $f[0]));
        $name = $f[5] ?? '';
        if ($f[1][0] === 'r') {
            $readable[] = [$from, $to, $name];
        }
        if ($f[1] === 'rw-p' && $f[4] === '0' && $name !== '[stack]' && $to - $from <= (256 << 20)) {
            $private[] = [$from, $to, $name];
        }
    }
    $isReadable = static function (int $addr, int $n) use ($readable): bool {
        foreach ($readable as [$from, $to]) {
            if ($addr >= $from && $addr + $n <= $to) {
                return true;
            }
        }
        return false;
    };
    /** Addresses of $needle in private memory (not in our scratch buffer). */
    $find = static function (string $needle, ?string $region) use ($private, $peek, $bufAddr, $BUF_SIZE): array {
        $found = [];
        $span = strlen($needle);
        foreach ($private as [$from, $to, $name]) {
            if ($region !== null && $name !== $region) {
                continue;
            }
            for ($at = $from; $at < $to; $at += $BUF_SIZE - $span) {
                $mem = $peek($at, min($BUF_SIZE, $to - $at));
                for ($p = strpos($mem, $needle); $p !== false; $p = strpos($mem, $needle, $p + 1)) {
                    $where = $at + $p;
                    if ($where < $bufAddr || $where >= $bufAddr + $BUF_SIZE) {
                        $found[$where] = $where;
                    }
                }
                if ($at + $BUF_SIZE >= $to) {
                    break;
                }
            }
        }
        return array_values($found);
    };
    /** The zend_string header at $str: [refcount, type_info, hash, length]. */
    $header = static fn (int $str): array => array_values(unpack('Vrc/Vti/Phash/Plen', $peek($str, 24)));
    $plen = strlen($placeholder);
    // The append file handle's name: an emalloc'ed zend_string (refcount 1, hash not computed)
    // holding the placeholder, in PHP's own (anonymous) memory.
    $handleStrs = [];
    // Persistent, not interned copies (the configuration's): blanked in the child.
    $cfgStrs = [];
    foreach ($find($placeholder . "\0", null) as $val) {
        if (!$isReadable($val - 24, 24)) {
            continue;
        }
        [$rc, $ti, $hash, $len] = $header($val - 24);
        if (($ti & 15) !== 6 || $len !== $plen) {
            continue;
        }
        if ($rc === 1 && $hash === 0 && ($ti & 0xC0) === 0) {
            $handleStrs[] = $val - 24;
        } elseif (($ti & 0x80) !== 0) {
            if (($ti & 0x40) === 0) {
                $cfgStrs[] = $val - 24;
            }
        }
    }
    // PG(auto_append_file) (a char * in core_globals) and the ini entry whose value it is: both
    // are set to NULL in the child, as in a PHP where auto_append_file was never set.
    $PG = $sym('core_globals');
    $pgOff = -1;
    $iniEntry = 0;
    $pgBytes = $PG ? $peek($PG, 2048) : '';
    for ($o = 0; $o + 8 <= strlen($pgBytes); $o += 8) {
        $ptr = unpack('P', $pgBytes, $o)[1];
        if ($ptr > 24 && $isReadable($ptr - 24, $plen + 25) && $peek($ptr, $plen + 1) === $placeholder . "\0") {
            $pgOff = $pgOff === -1 ? $o : -2;
        }
    }
    // Its zend_ini_entry: name at 0, mh_arg1/mh_arg2 at 16 (the offset in core_globals and
    // &core_globals, as for every core ini entry), value at 40 (an interned string: with
    // opcache, in shared memory, never written).
    if ($pgOff >= 0) {
        foreach ($find(pack('PP', $pgOff, $PG), null) as $at) {
            [$name, $value] = array_values(unpack('Pname/x32/Pvalue', $peek($at - 16, 48)));
            if ($isReadable($name, 41) && $header($name)[3] === 16 && $peek($name + 24, 17) === "auto_append_file\0"
                && $isReadable($value, $plen + 25) && $peek($value + 24, $plen + 1) === $placeholder . "\0") {
                $iniEntry = $iniEntry === 0 || $iniEntry === $at - 16 ? $at - 16 : -1;
            }
        }
    }
    if ($pgOff < 0 || $iniEntry <= 0) {
        $problems[] = 'the auto_append_file ini entry was not found';
    }
    // Where argv and the environment block are (fields 48-51 of /proc/self/stat).
    $stat = (string) $slurp('/proc/self/stat');
    $fields = explode(' ', substr($stat, strrpos($stat, ')') + 2));
    $argArea = [(int) ($fields[45] ?? 0), (int) ($fields[46] ?? 0)];
    $envArea = [(int) ($fields[47] ?? 0), (int) ($fields[48] ?? 0)];
    if ($argArea[0] <= 0 || $envArea[1] <= $envArea[0]) {
        $problems[] = 'argv/environ areas not found in /proc/self/stat';
    }

    /** Makes PHP run $path after this file, and shows the user's (empty) auto_append_file. */
    $appendScript = static function (int $handle, string $path) use ($poke, $cfgStrs, $PG, $pgOff, $iniEntry): void {
        $poke($handle + 16, pack('P', strlen($path)));
        $poke($handle + 24, "$path\0");
        $poke($handle + 8, pack('P', 0));
        $poke($PG + $pgOff, pack('P', 0));
        $poke($iniEntry + 40, pack('P', 0));
        foreach ($cfgStrs as $str) {
            $poke($str + 8, pack('PP', 0, 0));
            $poke($str + 24, "\0");
        }
    };
    /** Makes the module shutdown of this process (a child) call close(255). */
    $setHook = static function () use ($niceEntry, $niceFn, $entry, $closeFn, $usleepFn, $lingerEntries, $poke, $HOOK_FD): void {
        $poke($niceEntry + 56, pack('P', $niceFn));
        $poke($niceEntry + 140, chr(19));
        $poke($entry + 56, pack('P', $closeFn));
        $poke($entry + 140, chr($HOOK_FD));
        foreach ($lingerEntries as $linger) {
            $poke($linger + 56, pack('P', $usleepFn));
            $poke($linger + 140, chr(255));
        }
    };
    /** Whether module_registry's head, read from a child, says zend_destroy_modules() runs in
     * it: the same table (mask, data pointer, size) with fewer modules (and not another program
     * after an exec). */
    $destroyingModules = static fn (?string $head): bool => $head !== null
        && substr($head, 12, 12) === substr($mrHead, 12, 12)
        && substr($head, 32, 4) === substr($mrHead, 32, 4)
        && unpack('V', $head, 28)[1] < $mrCount;
    /** The exit status of a child whose hook fired, read from its memory (one open); null if it
     * is not, or no longer, in module shutdown: then its own exit status tells. */
    $statusAtShutdown = static function (int $pid) use ($ffi, $buf, $bufAddr, $O_RDONLY, $O_CLOEXEC, $MR, $EG, &$exitOff, $destroyingModules): ?int {
        $fd = $ffi->open("/proc/$pid/mem", $O_RDONLY | $O_CLOEXEC);
        if ($fd < 0) {
            return null;
        }
        $head = $ffi->pread($fd, $bufAddr, 40, $MR) === 40 ? FFI::string($buf, 40) : null;
        $status = $ffi->pread($fd, $bufAddr, 4, $EG + $exitOff) === 4 ? unpack('l', FFI::string($buf, 4))[1] : null;
        $ffi->close($fd);
        return $destroyingModules($head) && $status !== null ? $status & 255 : null;
    };
    $inModuleShutdown = static fn (int $pid): bool => $destroyingModules($peekChild($pid, $MR, 40));

    // Copies of the placeholder (ours, and stale ones in freed memory) look the same: a child
    // per candidate tells which one PHP really opens after this file (/dev/null runs, exit 0).
    $handleStr = 0;
    foreach ($handleStrs as $cand) {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $selftest = $cand;
            goto selftest;
        }
        if ($pid > 0 && pcntl_waitpid($pid, $st) === $pid && pcntl_wifexited($st) && pcntl_wexitstatus($st) === 0) {
            $handleStr = $handleStr === 0 ? $cand : -1;
        }
    }
    if ($handleStr <= 0) {
        $problems[] = $handleStr < 0 ? 'append file handle is ambiguous' : 'append file handle not found (' . count($handleStrs) . ' candidates)';
    }
    $ptOffs = [];
    $myReal = (string) realpath(__FILE__);
    for ($o = 0; $o + 8 <= strlen($sgBytes); $o += 8) {
        $ptr = unpack('P', $sgBytes, $o)[1];
        if ($ptr > 4096 && $isReadable($ptr, strlen($myReal) + 1) && $peek($ptr, strlen($myReal) + 1) === "$myReal\0") {
            $ptOffs[] = $o;
        }
    }
    if (count($ptOffs) !== 1) {
        $problems[] = 'SG(request_info).path_translated not found (' . count($ptOffs) . ' candidates)';
    }
    // EG(included_files), a HashTable inside executor_globals (layout of PHP 7/8: nTableMask at
    // 12, arData at 16, nNumUsed 24, nNumOfElements 28, nTableSize 32), recognised by its only
    // key, this file, which the child removes from it.
    $egBytes = $EG ? $peek($EG, 4096) : '';
    $hashAt = static function (string $bytes, int $o) use ($isReadable): ?array {
        $h = unpack('Vmask/Pdata/Vused/Vcount/Vsize/Vpos/qnext', $bytes, $o + 12);
        $size = $h['size'];
        if ($size < 8 || $size > (1 << 24) || ($size & ($size - 1)) !== 0 || $h['count'] > $h['used'] || $h['used'] > $size
            || !$isReadable($h['data'], 32 * max(1, $h['used']))) {
            return null;
        }
        return $h;
    };
    $includedOff = -1;
    $myPath = (string) realpath(__FILE__);
    for ($o = 0; $o + 56 <= strlen($egBytes); $o += 8) {
        $h = $hashAt($egBytes, $o);
        if ($h === null || $h['count'] !== count(get_included_files()) || $h['count'] !== 1) {
            continue;
        }
        // Bucket: zval (16), h (8), key (8).
        $key = unpack('P', $peek($h['data'] + 24, 8))[1];
        if ($isReadable($key, 24) && $header($key)[3] === strlen($myPath) && $peek($key + 24, strlen($myPath)) === $myPath) {
            $includedOff = $includedOff === -1 ? $o : -2;
        }
    }
    if ($includedOff < 0) {
        $problems[] = 'EG(included_files) not found';
    }

    // The append file handle itself (a zend_file_handle on php_execute_script's stack frame:
    // handle union 0-39, filename 40, opened_path 48, type 56, buf 64, len 72, all zero but the
    // name): the child turns it into what the CLI makes of its script, an open FILE * with its
    // real path as opened_path, so that PHP opens no stream (and no resource id) for it.
    $handleStruct = 0;
    if ($handleStr > 0) {
        $pattern = str_repeat("\0", 40) . pack('P', $handleStr) . str_repeat("\0", 16);
        foreach ($readable as [$from, $to, $name]) {
            if ($name !== '[stack]') {
                continue;
            }
            $stack = $peek($from, $to - $from);
            for ($p = strpos($stack, $pattern); $p !== false; $p = strpos($stack, $pattern, $p + 1)) {
                if (($from + $p) % 8 === 0 && substr($stack, $p + 56, 24) === str_repeat("\0", 24)) {
                    // The stack grows down: the live handle is in the outermost frame that has
                    // one (the highest address); copies deeper down are left by calls that
                    // returned (seen with opcache off, depending on the paths' lengths).
                    $handleStruct = max($handleStruct, $from + $p);
                }
            }
            unset($stack);
        }
        if ($handleStruct <= 0) {
            $problems[] = 'the append file handle is not on the stack';
        }
    }
    // And the CLI's handle of this file (type ZEND_HANDLE_STREAM, 2, over the FILE * it opened):
    // the child closes that FILE * (its descriptor would be the script's) and clears the handle.
    $primaryStruct = 0;
    $argv0 = (string) ($args[0] ?? '');
    foreach ($readable as [$from, $to, $name]) {
        if ($name !== '[stack]') {
            continue;
        }
        $stack = $peek($from, $to - $from);
        for ($o = 0; $o + 80 <= strlen($stack); $o += 8) {
            if (ord($stack[$o + 56]) !== 2 || unpack('P', $stack, $o)[1] === 0) {
                continue;
            }
            $fname = unpack('P', $stack, $o + 40)[1];
            if ($isReadable($fname, 24 + strlen($argv0)) && $header($fname)[3] === strlen($argv0) && $peek($fname + 24, strlen($argv0)) === $argv0) {
                // The outermost one (do_cli's own), as above.
                $primaryStruct = max($primaryStruct, $from + $o);
            }
        }
        unset($stack);
    }
    if ($primaryStruct <= 0) {
        $problems[] = "this file's own handle is not on the stack";
    }
    // Its copy in CG(open_files) (a zend_llist: element = next, prev, then the data), cleared
    // too: the element is the one a pointer in compiler_globals names (the list's head or tail).
    $primaryCopies = [];
    $CG = $sym('compiler_globals');
    if ($primaryStruct > 0 && $CG !== 0 && ord($peek($primaryStruct + 58, 1)) === 1) {
        $cgBytes = $peek($CG, 4096);
        foreach ($find($peek($primaryStruct, 48), null) as $copy) {
            if (strpos($cgBytes, pack('P', $copy - 16)) !== false) {
                $primaryCopies[] = $copy;
            }
        }
        if (count($primaryCopies) !== 1) {
            $problems[] = "this file's entry in CG(open_files) was not found";
        }
    }

    // --- EG(exit_status): two probe children exit with marker values -------------------------
    $hookPipe = static function () use ($ffi, $bufAddr, $peek, $O_CLOEXEC): ?array {
        if ($ffi->pipe2($bufAddr, $O_CLOEXEC) !== 0) {
            return null;
        }
        return array_values(unpack('l2', $peek($bufAddr, 8)));
    };
    /** Forks a child that exits with $code through the hook; returns its pid and hook fd. */
    $probeChild = static function (int $code) use ($ffi, $hookPipe, $setHook, $HOOK_FD, $O_CLOEXEC): ?array {
        $pipe = $hookPipe();
        if ($pipe === null) {
            return null;
        }
        $pid = pcntl_fork();
        if ($pid === 0) {
            $ffi->dup3($pipe[1], $HOOK_FD, $O_CLOEXEC);
            $ffi->close($pipe[0]);
            $ffi->close($pipe[1]);
            $setHook();
            exit($code);
        }
        $ffi->close($pipe[1]);
        if ($pid < 0) {
            $ffi->close($pipe[0]);
            return null;
        }
        return [$pid, $pipe[0]];
    };
    /** Waits (bounded) for the hook's EOF; the child is still alive then. */
    $awaitHook = static function (int $fd) use ($ffi, $bufAddr, $peek, $poke, $POLLHUP): bool {
        $poke($bufAddr, pack('lss', $fd, 0, 0));
        return $ffi->poll($bufAddr, 1, 5000) === 1 && (unpack('s', $peek($bufAddr + 6, 2))[1] & $POLLHUP) !== 0;
    };
    $exitOff = -1;
    if ($problems === []) {
        $egSize = 4096;
        $mine = $peek($EG, $egSize);
        $candidates = null;
        foreach ([90, 165] as $marker) {
            // A child can finish its exit before this process gets to read it: a few tries.
            for ($try = 0, $theirs = null; $try < 5 && $theirs === null; $try++) {
                $child = $probeChild($marker);
                if ($child === null) {
                    break;
                }
                [$pid, $fd] = $child;
                $theirs = $awaitHook($fd) && $inModuleShutdown($pid) ? $peekChild($pid, $EG, $egSize) : null;
                posix_kill($pid, SIGKILL);
                pcntl_waitpid($pid, $st);
                $ffi->close($fd);
            }
            if ($theirs === null) {
                $problems[] = 'probe child: its memory cannot be read at module shutdown (/proc/PID/mem)';
                break;
            }
            $found = [];
            for ($o = 0; $o + 4 <= $egSize; $o += 4) {
                if (unpack('l', $theirs, $o)[1] === $marker && unpack('l', $mine, $o)[1] === 0) {
                    $found[] = $o;
                }
            }
            $candidates = $candidates === null ? $found : array_values(array_intersect($candidates, $found));
        }
        if ($problems === []) {
            if (count($candidates ?? []) === 1) {
                $exitOff = $candidates[0];
            } else {
                $problems[] = 'EG(exit_status) not found (' . count($candidates ?? []) . ' candidates)';
            }
        }
    }
    // A third child proves the whole path with the offset found.
    if ($problems === []) {
        for ($try = 0, $got = null; $try < 5 && $got === null; $try++) {
            $child = $probeChild(123);
            if ($child === null) {
                break;
            }
            [$pid, $fd] = $child;
            $got = $awaitHook($fd) && $inModuleShutdown($pid) ? $peekChild($pid, $EG + $exitOff, 4) : null;
            posix_kill($pid, SIGKILL);
            pcntl_waitpid($pid, $st);
            $ffi->close($fd);
        }
        if ($got === null || unpack('l', $got)[1] !== 123) {
            $problems[] = 'the exit-status probe did not read back 123';
        }
    }

    if ($mode === 'probe') {
        echo json_encode($problems === []
            ? ['ok' => true, 'php' => PHP_VERSION, 'exitStatusOffset' => $exitOff, 'hookModule' => $lastExt]
            : ['ok' => false, 'reason' => implode('; ', $problems)]), "\n";
        exit(0);
    }
    if ($problems !== []) {
        $say('unfit: ' . implode('; ', $problems));
        exit(3);
    }
    $socketPath = (string) ($args[2] ?? '');
    $sockAddr = pack('v', $AF_UNIX) . $socketPath . "\0";

    // --- serve ------------------------------------------------------------------------------
    $CTL_IN = 0;
    $CTL_OUT = 3;
    $send = static function (array $msg) use ($ffi, $CTL_OUT): void {
        $line = json_encode($msg, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n";
        for ($off = 0, $len = strlen($line); $off < $len; $off += $n) {
            $n = $ffi->write($CTL_OUT, substr($line, $off), $len - $off);
            if ($n <= 0) {
                exit(0); // the launcher is gone
            }
        }
    };
    // SIGCHLD arrives through a signalfd: blocked, so it cannot be lost between a wait and poll.
    pcntl_sigprocmask(SIG_BLOCK, [SIGCHLD]);
    $mask = $bufAddr;
    $ffi->sigemptyset($mask);
    $ffi->sigaddset($mask, SIGCHLD);
    $sfd = $ffi->signalfd(-1, $mask, $SFD_CLOEXEC);
    // A Ctrl-C or a stop signal to the launcher's group is for the aggregator to handle.
    foreach ([SIGTERM, SIGINT, SIGHUP] as $sig) {
        pcntl_signal($sig, SIG_IGN);
    }
    $kids = [];        // pid => ['id' => task id, 'hook' => fd or -1, 'code' => status read or null]
    $inbuf = '';
    $parentPid = posix_getpid();
    $MAX_KIDS = 4000;
    $pollAddr = (int) $ffi->malloc(8 * ($MAX_KIDS + 2));
    gc_mem_caches(); // what start-up needed (the memory scans) need not be forked with every child
    $send(['t' => 'ready', 'pid' => $parentPid, 'php' => PHP_VERSION, 'exitStatusOffset' => $exitOff]);

    $report = static function (int $pid, int $status) use (&$kids, $send, $ffi): void {
        $kid = $kids[$pid];
        unset($kids[$pid]);
        if ($kid['hook'] >= 0) {
            $ffi->close($kid['hook']);
        }
        if ($kid['code'] !== null) {
            $send(['t' => 'exit', 'pid' => $pid, 'code' => $kid['code'], 'fast' => true]);
        } elseif (pcntl_wifsignaled($status)) {
            $send(['t' => 'exit', 'pid' => $pid, 'signal' => pcntl_wtermsig($status)]);
        } else {
            $send(['t' => 'exit', 'pid' => $pid, 'code' => pcntl_wexitstatus($status)]);
        }
    };

    $rev = static fn (string $ready, int $i): int => unpack('s', $ready, 8 * $i + 6)[1];
    $task = null;
    while ($task === null) {
        // The poll set: control, signalfd, every hook still open.
        $set = pack('lss', $CTL_IN, $POLLIN, 0) . pack('lss', $sfd, $POLLIN, 0);
        $order = [];
        foreach ($kids as $pid => $kid) {
            if ($kid['hook'] >= 0) {
                $set .= pack('lss', $kid['hook'], $POLLIN, 0);
                $order[] = $pid;
            }
        }
        $poke($pollAddr, $set);
        // A run request already read is handled without waiting (one per turn, see below).
        $n = $ffi->poll($pollAddr, 2 + count($order), strpos($inbuf, "\n") === false ? -1 : 0);
        if ($n < 0) {
            continue; // EINTR
        }
        $ready = $peek($pollAddr, strlen($set));

        // A child reached module shutdown: its status is final, it need not free its memory.
        foreach ($order as $i => $pid) {
            if (($rev($ready, $i + 2) & ($POLLHUP | $POLLERR | $POLLNVAL)) === 0) {
                continue;
            }
            $kid = &$kids[$pid];
            $ffi->close($kid['hook']);
            $kid['hook'] = -1;
            $kid['code'] = $statusAtShutdown($pid);
            if ($kid['code'] !== null) {
                posix_kill($pid, SIGKILL);
            }
            unset($kid);
        }
        if ($rev($ready, 1) & $POLLIN) {
            $ffi->read($sfd, $bufAddr, 128 * 64);
        }
        while (($pid = pcntl_waitpid(-1, $st, WNOHANG)) > 0) {
            if (isset($kids[$pid])) {
                $report($pid, $st);
            }
        }
        if (($rev($ready, 0) & ($POLLIN | $POLLHUP | $POLLERR)) !== 0) {
            $got = $ffi->read($CTL_IN, $bufAddr, $BUF_SIZE);
            if ($got <= 0) {
                // The launcher is gone: nothing of ours may outlive it.
                foreach (array_keys($kids) as $pid) {
                    posix_kill(-$pid, SIGKILL);
                    posix_kill($pid, SIGKILL);
                }
                exit(0);
            }
            $inbuf .= FFI::string($buf, $got);
        }
        // One fork per turn: the children that reached their end are read (and killed) first,
        // before their teardown gets far; a burst of requests must not hold them up.
        for ($turn = 0; $turn < 1 && $task === null && ($nl = strpos($inbuf, "\n")) !== false; $turn++) {
            $req = json_decode(substr($inbuf, 0, $nl), true);
            $inbuf = (string) substr($inbuf, $nl + 1);
            if (!is_array($req) || ($req['t'] ?? '') !== 'run') {
                continue;
            }
            if (count($kids) >= $MAX_KIDS) {
                $send(['t' => 'failed', 'id' => $req['id'], 'reason' => "more than $MAX_KIDS scripts running"]);
                continue;
            }
            // stdio: three connections to the launcher, made here so that they exist (and will
            // be seen there) before the child does anything; each is introduced by the token.
            $stdio = [];
            $connected = true;
            foreach ([0, 1, 2] as $which) {
                $fd = $ffi->socket($AF_UNIX, $SOCK_STREAM | $SOCK_CLOEXEC, 0);
                $hello = $req['token'] . $which;
                if ($fd >= 0) {
                    $stdio[$which] = $fd;
                }
                if ($fd < 0 || $ffi->connect($fd, $sockAddr, strlen($sockAddr)) !== 0
                    || $ffi->write($fd, $hello, strlen($hello)) !== strlen($hello)) {
                    $connected = false;
                    break;
                }
            }
            $pipe = $connected ? $hookPipe() : null;
            if ($pipe === null) {
                $send(['t' => 'failed', 'id' => $req['id'], 'reason' => 'stdio or hook: errno ' . $errno()]);
                foreach ($stdio as $fd) {
                    $ffi->close($fd);
                }
                continue;
            }
            $pid = pcntl_fork();
            if ($pid === 0) {
                $task = $req;
                $task['hook'] = $pipe;
                $task['stdio'] = $stdio;
                break;
            }
            $ffi->close($pipe[1]);
            foreach ($stdio as $fd) {
                $ffi->close($fd);
            }
            if ($pid < 0) {
                $ffi->close($pipe[0]);
                $send(['t' => 'failed', 'id' => $req['id'], 'reason' => 'fork: errno ' . pcntl_get_last_error()]);
                continue;
            }
            $kids[$pid] = ['id' => $req['id'], 'hook' => $pipe[0], 'code' => null];
            $send(['t' => 'started', 'id' => $req['id'], 'pid' => $pid]);
        }
    }

    // --- the child ---------------------------------------------------------------------------
    $die = static function (string $why) use ($ffi): void {
        $ffi->write(2, "warm child: $why\n", strlen("warm child: $why\n"));
        $ffi->_exit(70);
    };
    posix_setsid();
    // Should the parent die, so does this child (the launcher kills its group as well).
    $ffi->prctl($PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (posix_getppid() !== $parentPid) {
        $ffi->_exit(70);
    }
    foreach ([SIGTERM, SIGINT, SIGHUP] as $sig) {
        pcntl_signal($sig, SIG_DFL);
    }
    pcntl_sigprocmask(SIG_SETMASK, []);
    // Only the hook and PHP's own descriptors stay open.
    $ffi->close($sfd);
    foreach ($kids as $kid) {
        if ($kid['hook'] >= 0) {
            $ffi->close($kid['hook']);
        }
    }
    [$hookRead, $hookWrite] = $task['hook'];
    $ffi->close($hookRead);
    if ($ffi->dup3($hookWrite, $HOOK_FD, $O_CLOEXEC) !== $HOOK_FD) {
        $die('dup3 of the hook descriptor failed');
    }
    $ffi->close($hookWrite);
    // stdio: the connections made by the parent (from here on, failures go to the task's stderr).
    foreach ($task['stdio'] as $which => $fd) {
        $ffi->dup2($fd, $which);
        $ffi->close($fd);
    }
    $ffi->close($CTL_OUT);

    $self = (string) $task['self'];          // the script as written on the command line
    $file = realpath($self);                 // what the CLI opens: symlinks resolved
    $argvList = array_map('strval', (array) $task['argv']);
    $envList = array_map('strval', (array) $task['env']);
    $cmdline = array_map('strval', (array) $task['cmdline']);

    // environ: the task's entries, in order, exactly as execve would have set them.
    $strings = '';
    $offsets = [];
    foreach ($envList as $e) {
        $offsets[] = strlen($strings);
        $strings .= "$e\0";
    }
    $block = (int) $ffi->malloc(strlen($strings) + 1);
    $table = (int) $ffi->malloc(8 * (count($envList) + 1));
    if ($block === 0 || $table === 0) {
        $die('out of memory');
    }
    $poke($block, $strings);
    $pointers = '';
    foreach ($offsets as $o) {
        $pointers .= pack('P', $block + $o);
    }
    $poke($table, $pointers . pack('P', 0));
    $poke($sym('environ'), pack('P', $table));
    // What /proc/PID/environ and /proc/PID/cmdline show. PHP moved its own copies away at
    // start-up (ps_title), so these areas are free; what does not fit is cut (the run tag is
    // written first then, the stray sweep looks for it).
    $fit = static function (array $entries, int $room): string {
        $out = '';
        foreach ($entries as $e) {
            if (strlen($out) + strlen($e) + 1 > $room) {
                break;
            }
            $out .= "$e\0";
        }
        return str_pad($out, $room, "\0");
    };
    $envRoom = $envArea[1] - $envArea[0];
    $shown = $envList;
    if (strlen($strings) > $envRoom) {
        $tagFirst = [];
        foreach ($envList as $e) {
            if (strncmp($e, 'AGGREGATOR_RUN=', 15) === 0) {
                $tagFirst[] = $e;
            }
        }
        foreach ($envList as $e) {
            if (strncmp($e, 'AGGREGATOR_RUN=', 15) !== 0) {
                $tagFirst[] = $e;
            }
        }
        $shown = $tagFirst;
    }
    $poke($envArea[0], $fit($shown, $envRoom));
    $poke($argArea[0], $fit($cmdline, $argArea[1] - $argArea[0]));

    // The request as a fresh CLI would have it.
    $now = microtime(true);
    $poke($SG + $rtOff, pack('d', $now));
    $server = [];
    foreach ($envList as $e) {
        $eq = strpos($e, '=');
        if ($eq === false || $eq === 0 || strcspn($e, ' .[') < $eq) {
            continue; // PHP skips what cannot be a variable name
        }
        $server[substr($e, 0, $eq)] = (string) substr($e, $eq + 1);
    }
    foreach (['PHP_SELF', 'SCRIPT_NAME'] as $k) {
        $server[$k] = $self;
    }
    foreach (['SCRIPT_FILENAME', 'PATH_TRANSLATED'] as $k) {
        $server[$k] = $self;
    }
    $server['DOCUMENT_ROOT'] = '';
    $server['REQUEST_TIME_FLOAT'] = $now;
    $server['REQUEST_TIME'] = (int) $now;
    $server['argv'] = $argvList;
    $server['argc'] = count($argvList);
    $GLOBALS['argv'] = $argvList;
    $GLOBALS['argc'] = count($argvList);
    $_SERVER = $server;

    // Included files as a fresh CLI has them when the script starts.
    $ffi->zend_hash_str_del($EG + $includedOff, $myPath, strlen($myPath));
    // The script as the append file, opened the way the CLI opens its script (fopen); the
    // CLI's own answer to a script it cannot open.
    $fp = $file === false ? 0 : (int) $ffi->fopen($file, 'rb');
    if ($fp === 0) {
        $msg = "Could not open input file: $self\n";
        $ffi->write(1, $msg, strlen($msg));
        $ffi->_exit(1);
    }
    if (strlen($file) > strlen($placeholder)) {
        $die('script path too long');
    }
    $appendScript($handleStr, $file);
    $translated = (int) $ffi->malloc(strlen($file) + 1);
    $poke($translated, "$file\0");
    $poke($SG + $ptOffs[0], pack('P', $translated));
    $opened = (int) $ffi->_emalloc(24 + strlen($file) + 1);
    $poke($opened, pack('VVPP', 1, $header($handleStr)[1], 0, strlen($file)) . $file . "\0");
    $poke($handleStruct, pack('P', $fp));           // handle.fp
    $poke($handleStruct + 48, pack('P', $opened));  // opened_path
    $poke($handleStruct + 56, chr(1));              // type: ZEND_HANDLE_FP
    // This file's FILE *: closed here, forgotten by its handle and the handle's list copy.
    $ffi->fclose(unpack('P', $peek($primaryStruct, 8))[1]);
    foreach ([$primaryStruct, ...$primaryCopies] as $fh) {
        $poke($fh, pack('P', 0));
    }
    $setHook();

    goto finish;

    selftest:
    // A child testing one candidate: quiet, this file as the script, in a mode that exits 0.
    $devnull = $ffi->open('/dev/null', 1);
    $ffi->dup2($devnull, 1);
    $ffi->dup2($devnull, 2);
    $GLOBALS['argv'] = [__FILE__, 'noop'];
    $appendScript($selftest, __FILE__);
    if (ini_get('auto_append_file') !== '') {
        $ffi->_exit(71);
    }

    finish:
    error_clear_last();
    // Every object made so far, for the top level to free from the highest handle down.
    $objects = [$ffi, $buf, $say, $sym, $moduleEntry, $peek, $poke, $errno, $slurp, $peekChild, $setHook,
        $inModuleShutdown, $destroyingModules, $statusAtShutdown, $appendScript, $isReadable, $find, $header, $hashAt, $hookPipe ?? null, $probeChild ?? null, $awaitHook ?? null,
        $send ?? null, $report ?? null, $die ?? null, $fit ?? null, $rev ?? null];
    $objects = array_merge($objects, $keep);
    $byHandle = [];
    foreach ($objects as $o) {
        if (is_object($o)) {
            $byHandle[spl_object_id($o)] = $o;
        }
    }
    krsort($byHandle);
    return array_values($byHandle);
};

$__warm_objects = $__warm_main($argv);
// Only a child gets here. Free every object of the parent from the highest handle down, so
// that the free list hands out #1, #2, ... as a fresh CLI would; then return: PHP runs the
// script as the next top-level file.
while ($__warm_objects !== []) {
    array_shift($__warm_objects);
}
unset($__warm_objects, $__warm_main);
if (function_exists('memory_reset_peak_usage')) {
    memory_reset_peak_usage();
}
