extends Control
## Horizontal bars, one per row, scaled to the largest value: a label on the left, the bar, and
## its figure. Rows are {label, value, color, text}.

const ROW_HEIGHT := 26.0
const LABEL_WIDTH := 190.0

var _rows: Array = []


## Replaces the bars with [param rows].
func set_rows(rows: Array) -> void:
	_rows = rows
	custom_minimum_size = Vector2(640, ROW_HEIGHT * rows.size() + 8)
	queue_redraw()


func _draw() -> void:
	var font := get_theme_default_font()
	var largest := 0.0
	for row: Dictionary in _rows:
		largest = maxf(largest, row.value)
	var room := maxf(size.x - LABEL_WIDTH - 180.0, 40.0)
	for i in _rows.size():
		var row: Dictionary = _rows[i]
		var y := 4.0 + i * ROW_HEIGHT
		draw_string(font, Vector2(0, y + 17), row.label, HORIZONTAL_ALIGNMENT_LEFT, LABEL_WIDTH - 8, 14)
		var width: float = room * row.value / largest if largest > 0.0 else 0.0
		draw_rect(Rect2(LABEL_WIDTH, y + 3, maxf(width, 2.0), ROW_HEIGHT - 8), row.color)
		draw_string(font, Vector2(LABEL_WIDTH + width + 8, y + 17), row.text, HORIZONTAL_ALIGNMENT_LEFT, -1, 14)
