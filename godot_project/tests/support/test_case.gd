extends Node
## Base of every in-engine test file: `test_*` methods (they may `await`) and assertions that
## record failures instead of stopping, so one run reports every broken check.

var _failures: Array[String] = []
var _expected_errors: Array[String] = []


## Called by the runner before each test.
func begin_test() -> void:
	_failures.clear()
	_expected_errors.clear()


## Fails the running test with [param message].
func fail(message: String) -> void:
	_failures.append(message)


func assert_true(condition: bool, message := "expected true") -> void:
	if not condition:
		fail(message)


func assert_false(condition: bool, message := "expected false") -> void:
	if condition:
		fail(message)


func assert_eq(actual: Variant, expected: Variant, message := "") -> void:
	if typeof(actual) != typeof(expected) or actual != expected:
		fail("%sexpected %s (%s), got %s (%s)" % [_prefix(message), var_to_str(expected),
				type_string(typeof(expected)), var_to_str(actual), type_string(typeof(actual))])


func assert_ne(actual: Variant, unexpected: Variant, message := "") -> void:
	if typeof(actual) == typeof(unexpected) and actual == unexpected:
		fail("%sdid not expect %s" % [_prefix(message), var_to_str(actual)])


## Declares that the running test must log an error containing [param fragment] (for example
## "AtomicCounter.add"); the runner fails the test if it does not, and accepts that error.
func expect_error(fragment: String) -> void:
	_expected_errors.append(fragment)


## Runs [param body] on [param count] new threads at once, passing each its index, and returns
## what each returned, in index order.
func run_threads(count: int, body: Callable) -> Array:
	var threads: Array[Thread] = []
	for i in count:
		var thread := Thread.new()
		thread.start(body.bind(i))
		threads.append(thread)
	var results := []
	for thread in threads:
		results.append(thread.wait_to_finish())
	return results


func _prefix(message: String) -> String:
	return "" if message.is_empty() else message + ": "


## Frees [param nodes] one by one on the main thread while [param threads] threads keep calling
## [param lookup] with each index. Returns how many lookups gave something other than that
## index's node or null: 0 when every lookup saw the live node or nothing.
func count_wrong_lookups_while_freeing(nodes: Array, threads: int, lookup: Callable) -> int:
	var stop := AtomicCounter.new()
	var running: Array[Thread] = []
	for t in threads:
		var thread := Thread.new()
		thread.start(func() -> int:
			var wrong := 0
			while stop.get_count() == 0:
				for i in nodes.size():
					var found = lookup.call(i)
					if found != null and found != nodes[i]:
						wrong += 1
			return wrong)
		running.append(thread)
	for node: Node in nodes:
		node.free()
		OS.delay_usec(50)
	stop.increment()
	var wrong := 0
	for thread in running:
		wrong += thread.wait_to_finish()
	return wrong
