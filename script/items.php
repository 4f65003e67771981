<?php
// Demo items script (docs/protocol.md, Items step; docs/scripts.md, The demo scripts).
// stdin: one supplier object exactly as suppliers.php returned it (with `params`).
// stdout: {"items":[...]} and, for analog searches, {"suppliers":[...]} to search next.
// The supplier `class` prefix (the part before the last -N) picks the behaviour;
// an unknown prefix behaves like `normal`.

require __DIR__ . '/lib.php';

$supplier = demo_read_input(true);
demo_delay();

$class = (string) demo_field($supplier, 'class', '');
$code = demo_field($supplier, 'code', '');
$brand = demo_field($supplier, 'brand', '');

// "timeout-17" => prefix "timeout", number 17; "normal" => prefix "normal", number 1.
if (preg_match('/^(.*)-(\d+)$/s', $class, $m)) {
    $prefix = $m[1];
    $number = (int) $m[2];
} else {
    $prefix = $class;
    $number = 1;
}

// $count items that differ by index (and a little by supplier number), so the demo
// table is readable; the first item of normal-1 is the original requirements' example item.
function demo_items($count, $class, $number, $brand)
{
    $items = array();
    for ($i = 1; $i <= $count; $i++) {
        $items[] = array(
            'code' => (string) (3310 + $i),
            'brand' => $brand === '' ? 'ctr' : (string) $brand,
            'name' => 'Part ' . $i . ' from ' . $class,
            'price' => (string) (100 * $i + 22 + $number),
            'quantity' => (string) (10 * $i + 20),
            'supplier' => $class,
        );
    }
    return $items;
}

switch ($prefix) {
    case 'analog':
        // Items plus two more suppliers to search for analogs (the original's "nested" search).
        demo_output(array(
            'items' => demo_items(3, $class, $number, $brand),
            'suppliers' => array(
                demo_supplier('normal-1', $code, $brand, 0),
                demo_supplier('normal-2', $code, $brand, 0),
            ),
        ));
        break;
    case 'loop':
        // Names itself again: an endless nested search that only the session timeout
        // and aggregator.limit.tasks stop.
        demo_output(array(
            'items' => demo_items(1, $class, $number, $brand),
            'suppliers' => array($supplier),
        ));
        break;
    case 'empty':
        demo_output(array('items' => array()));
        break;
    case 'timeout':
        demo_hang();
        break;
    case 'error':
        demo_fail('demo: items script failed on purpose (' . $class . ')', 2);
        break;
    case 'badjson':
        echo 'demo: this is not JSON (' . $class . ")\n";
        break;
    case 'badresponse':
        demo_output(array('message' => 'demo: JSON without an items array (' . $class . ')'));
        break;
    default:
        demo_output(array('items' => demo_items(3, $class, $number, $brand)));
}
