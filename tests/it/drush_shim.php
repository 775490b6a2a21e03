<?php
// A small stand-in for the drush API the sitesnap.drush.inc hook file uses, to test it with
// php-cli: d(), drush_get_option(), drush_set_error(), drush_log(), dt(). It runs the pre-task
// hook of one provision task the way drush does (an error set by the hook aborts the task), then
// "runs the task" by creating a marker file.
// Usage: php drush_shim.php <hook file> <task> <uri> <root> <marker file>
list(, $inc, $task, $uri, $root, $marker) = $argv;

class ShimContext { public $uri; public $root; public $type = 'site'; }
$GLOBALS['shim_context'] = new ShimContext();
$GLOBALS['shim_context']->uri = $uri;
$GLOBALS['shim_context']->root = $root;
$GLOBALS['shim_errors'] = array();

function d() { return $GLOBALS['shim_context']; }
function drush_get_option($name, $default = NULL) { return $default; }
function dt($text, $args = array()) { return strtr($text, $args); }
function drush_log($message, $type = 'notice') { fwrite(STDERR, "[$type] $message\n"); }
function drush_set_error($code, $message = NULL) {
  $GLOBALS['shim_errors'][] = "$code: $message";
  fwrite(STDERR, "[error] $code: $message\n");
  return FALSE;
}

require $inc;
$hook = 'drush_sitesnap_pre_provision_' . $task;
if (!function_exists($hook)) {
  fwrite(STDERR, "no hook $hook\n");
  exit(2);
}
$result = $hook();
if ($result === FALSE || !empty($GLOBALS['shim_errors'])) {
  fwrite(STDERR, "task provision-$task aborted\n");
  exit(1);
}
touch($marker);
exit(0);
