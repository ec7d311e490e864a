class_name DemoFrameGraph
extends Control
## Draws the last few seconds of frame times, with the frame budget's line, so you can see whether
## work on other threads leaves the main thread's frames flat.

## How many frames the graph keeps (one bar each).
@export_range(30, 1000) var samples := 240
## The frame rate whose budget the line marks; a frame over 1.5 budgets is drawn red.
@export_range(15, 240, 1, "suffix:FPS") var target_fps := 60

var _times: PackedFloat32Array = []
var _last_usec := 0


func _process(_delta: float) -> void:
	var now := Time.get_ticks_usec()
	if _last_usec > 0:
		_times.append((now - _last_usec) / 1000.0)
		if _times.size() > samples:
			_times.remove_at(0)
	_last_usec = now
	queue_redraw()


## The slowest frame of the last [param frames] frames ([code]-1[/code]: all kept), in
## milliseconds.
func worst_msec(frames := -1) -> float:
	var first := 0 if frames < 0 else maxi(0, _times.size() - frames)
	var worst := 0.0
	for i in range(first, _times.size()):
		worst = maxf(worst, _times[i])
	return worst


func _draw() -> void:
	var budget_msec := 1000.0 / target_fps
	var height := size.y
	var scale := height / (budget_msec * 3.0)  # The graph's top is three frames' budget.
	draw_rect(Rect2(Vector2.ZERO, size), Color(0, 0, 0, 0.35))
	var budget_y := height - budget_msec * scale
	draw_line(Vector2(0, budget_y), Vector2(size.x, budget_y), Color(1, 1, 1, 0.4))
	var step := size.x / samples
	for i in _times.size():
		var msec := _times[i]
		var bar := minf(msec * scale, height)
		var color := Color.LIME_GREEN if msec <= budget_msec * 1.5 else Color.ORANGE_RED
		draw_rect(Rect2(i * step, height - bar, maxf(step - 0.5, 1.0), bar), color)
	draw_string(get_theme_default_font(), Vector2(4, 14),
			"frame time (worst %.1f ms; line = %.1f ms)" % [worst_msec(), budget_msec],
			HORIZONTAL_ALIGNMENT_LEFT, -1, 12)
