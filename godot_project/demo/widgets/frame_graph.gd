extends Control
## Draws the last few seconds of frame times, with the 60 FPS line, so you can see whether work
## on other threads leaves the main thread's frames flat.

const SAMPLES := 240
const BUDGET_MSEC := 1000.0 / 60.0

var _times: PackedFloat32Array = []
var _last_usec := 0


func _ready() -> void:
	custom_minimum_size = Vector2(SAMPLES * 2, 90)


func _process(_delta: float) -> void:
	var now := Time.get_ticks_usec()
	if _last_usec > 0:
		_times.append((now - _last_usec) / 1000.0)
		if _times.size() > SAMPLES:
			_times.remove_at(0)
	_last_usec = now
	queue_redraw()


## The slowest frame of the last [param frames] frames, in milliseconds.
func worst_msec(frames := SAMPLES) -> float:
	var worst := 0.0
	for i in range(maxi(0, _times.size() - frames), _times.size()):
		worst = maxf(worst, _times[i])
	return worst


func _draw() -> void:
	var height := size.y
	var scale := height / (BUDGET_MSEC * 3.0)  # The graph's top is three frames' budget.
	draw_rect(Rect2(Vector2.ZERO, size), Color(0, 0, 0, 0.35))
	var budget_y := height - BUDGET_MSEC * scale
	draw_line(Vector2(0, budget_y), Vector2(size.x, budget_y), Color(1, 1, 1, 0.4))
	var step := size.x / SAMPLES
	for i in _times.size():
		var msec := _times[i]
		var bar := minf(msec * scale, height)
		var color := Color.LIME_GREEN if msec <= BUDGET_MSEC * 1.5 else Color.ORANGE_RED
		draw_rect(Rect2(i * step, height - bar, maxf(step - 0.5, 1.0), bar), color)
	draw_string(get_theme_default_font(), Vector2(4, 14),
			"frame time (worst %.1f ms; line = 16.7 ms)" % worst_msec(), HORIZONTAL_ALIGNMENT_LEFT, -1, 12)
