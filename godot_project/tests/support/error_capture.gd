extends Logger
## Collects engine and script errors (from any thread) so the runner can fail the test that caused
## them, and so a test can assert that bad input produced the documented error.
## Script errors are marked "SCRIPT ERROR: ", as Godot prints them.

var _mutex := Mutex.new()
var _errors: Array[String] = []


func _log_error(function: String, _file: String, _line: int, code: String, rationale: String,
		_editor_notify: bool, error_type: int, _script_backtraces: Array[ScriptBacktrace]) -> void:
	if error_type == ERROR_TYPE_WARNING:
		return
	var text := code if rationale.is_empty() else "%s: %s" % [code, rationale]
	if error_type == ERROR_TYPE_SCRIPT:
		text = "SCRIPT ERROR: " + text
	_mutex.lock()
	_errors.append("%s (in %s)" % [text, function])
	_mutex.unlock()


## Returns the errors seen since the last call and forgets them.
func take() -> Array[String]:
	_mutex.lock()
	var taken := _errors
	_errors = []
	_mutex.unlock()
	return taken
