extends SceneTree
## In-engine test runner: `godot --headless --path godot_project -s res://tests/run_tests.gd
## [-- --filter=TEXT]`. Runs every `test_*` method of every `res://tests/test_*.gd` and prints
## `RUN name`, then `PASS name` or `FAIL name: reason`, then `N passed, N failed`; exits 1 when
## anything failed. `cargo xtask test` runs it and watches for hangs and engine errors.

const TESTS_DIR := "res://tests"

var _passed := 0
var _failed := 0
var _errors: Object  # support/error_capture.gd where the engine has Logger (4.5+), else null
var _last_test := "the start"


func _initialize() -> void:
	_run_all()


func _run_all() -> void:
	await process_frame  # Nodes can only join the tree once the main loop runs.
	if ClassDB.class_exists("Logger"):
		_errors = load(TESTS_DIR + "/support/error_capture.gd").new()
		OS.add_logger(_errors)
	var filter := _filter_argument()
	for file in _test_files():
		await _run_file(file, filter)
	_report_stray_script_errors()
	print("%d passed, %d failed" % [_passed, _failed])
	quit(1 if _failed > 0 else 0)


func _filter_argument() -> String:
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--filter="):
			return arg.trim_prefix("--filter=")
	return ""


func _test_files() -> PackedStringArray:
	var files := PackedStringArray()
	for file in DirAccess.get_files_at(TESTS_DIR):
		if file.begins_with("test_") and file.ends_with(".gd"):
			files.append(TESTS_DIR.path_join(file))
	files.sort()
	return files


func _run_file(path: String, filter: String) -> void:
	var script: Script = load(path)
	if script == null or not script.can_instantiate():
		_report(path.get_file(), ["cannot load the test script"])
		return
	var suite: Node = script.new()
	root.add_child(suite)
	var suite_name := path.get_file().get_basename().trim_prefix("test_")
	for method in script.get_script_method_list():
		var method_name: String = method["name"]
		var test_name := "%s.%s" % [suite_name, method_name.trim_prefix("test_")]
		if method_name.begins_with("test_") and (filter.is_empty() or filter in test_name):
			await _run_test(suite, method_name, test_name)
	suite.queue_free()
	await process_frame


func _run_test(suite: Node, method_name: String, test_name: String) -> void:
	_report_stray_script_errors()
	print("RUN ", test_name)
	suite.begin_test()
	await suite.call(method_name)
	var failures: Array[String] = suite._failures.duplicate()
	if _errors:
		failures.append_array(_unexplained_errors(_errors.take(), suite._expected_errors))
	_report(test_name, failures)
	_last_test = test_name


## Script errors logged between two tests (a late delivery, loading a test script) fail the run as
## one more result; other errors there are not attributed to anything and are dropped.
func _report_stray_script_errors() -> void:
	if not _errors:
		return
	var stray: Array = _errors.take().filter(func(error: String) -> bool: return error.begins_with("SCRIPT ERROR"))
	if not stray.is_empty():
		_report("script errors after %s" % _last_test, stray.map(func(error: String) -> String: return "unexpected error: " + error))


## Errors the test did not declare with expect_error fail it; declared ones must have happened.
func _unexplained_errors(errors: Array[String], expected: Array[String]) -> Array[String]:
	var problems: Array[String] = []
	var unmatched := expected.duplicate()
	for error in errors:
		var matched := false
		for fragment in expected:
			if fragment in error:
				matched = true
				unmatched.erase(fragment)
		if not matched:
			problems.append("unexpected error: " + error)
	for fragment in unmatched:
		problems.append("expected an error containing '%s', none was logged" % fragment)
	return problems


func _report(test_name: String, failures: Array) -> void:
	if failures.is_empty():
		_passed += 1
		print("PASS ", test_name)
	else:
		_failed += 1
		print("FAIL %s: %s" % [test_name, "; ".join(failures)])
