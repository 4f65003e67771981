<?php
// Helpers shared by the demo scripts (docs/scripts.md, The demo scripts).
// PHP 7.0 syntax only and no Composer: these stand in for a shop's own translator
// scripts, which may still run on old PHP.

// Keep names and URLs readable in the browser; both are valid JSON either way.
define('DEMO_JSON_FLAGS', JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);

// Report on stderr (the aggregator logs it) and exit non-zero (=> E_SCRIPT_ERROR).
function demo_fail($message, $exitCode)
{
    fwrite(STDERR, $message . "\n");
    exit($exitCode);
}

// Read the whole stdin and decode it. Objects stay stdClass (not arrays) so that
// `{}` is re-encoded as `{}`, e.g. when the loop supplier is sent back unchanged.
function demo_read_input($requireObject)
{
    $raw = stream_get_contents(STDIN);
    $data = json_decode($raw === false ? '' : $raw);
    if (json_last_error() !== JSON_ERROR_NONE) {
        demo_fail('invalid input JSON: ' . json_last_error_msg(), 1);
    }
    if ($requireObject && !is_object($data)) {
        demo_fail('input JSON must be an object', 1);
    }
    return $data;
}

// Sleep a random 0..AGGREGATOR_DEMO_DELAY_MS ms (default 1000, 0 = none), so the demo
// page shows tasks finishing out of order, as real suppliers do.
function demo_delay()
{
    $env = getenv('AGGREGATOR_DEMO_DELAY_MS');
    $max = ($env === false || $env === '') ? 1000 : (int) $env;
    if ($max > 0) {
        usleep(random_int(0, $max) * 1000);
    }
}

// "Hang" far past any sane aggregator.timeout.script: the aggregator must kill us.
function demo_hang()
{
    sleep(600);
    demo_fail('demo: still alive after 600 s, nobody killed this script', 3);
}

// Print one JSON value as the script's answer.
function demo_output($value)
{
    $json = json_encode($value, DEMO_JSON_FLAGS);
    if ($json === false) {
        demo_fail('cannot encode output: ' . json_last_error_msg(), 1);
    }
    echo $json, "\n";
}

// A field of the decoded input as a scalar, or $default when missing or not scalar.
function demo_field($object, $name, $default)
{
    return (isset($object->$name) && is_scalar($object->$name)) ? $object->$name : $default;
}

// One supplier object shaped like the original's. `params` stands for the secrets that the
// aggregator passes to items.php but must never forward to the browser; `info` is what
// the browser does get (as `_info`).
function demo_supplier($class, $code, $brand, $analog)
{
    return array(
        'class' => $class,
        'params' => array('login' => 'demo', 'password' => 'secret-' . $class),
        'code' => $code,
        'brand' => $brand,
        'analog' => $analog,
        'info' => array('supplier' => $class),
    );
}
