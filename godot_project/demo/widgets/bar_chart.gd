class_name DemoBarChart
extends Control
## Horizontal bars, one per row, scaled to the largest value: a label on the left, the bar, and
## its figure. Rows are {label, value, color, text}.

## Height of one bar's row, in pixels.
@export_range(12.0, 64.0, 1.0, "suffix:px") var row_height := 26.0
## Width of the labels' column left of the bars, in pixels.
@export_range(40.0, 400.0, 1.0, "suffix:px") var label_width := 190.0
## Width the chart asks for; the bars scale to the width it gets.
@export_range(200.0, 2000.0, 1.0, "suffix:px") var chart_width := 640.0

var _rows: Array[Dictionary] = []


## Replaces the bars with [param rows].
func set_rows(rows: Array[Dictionary]) -> void:
	_rows = rows
	custom_minimum_size = Vector2(chart_width, row_height * rows.size() + 8)
	queue_redraw()


## How many bars the chart shows.
func row_count() -> int:
	return _rows.size()


func _draw() -> void:
	var font := get_theme_default_font()
	var largest := 0.0
	for row: Dictionary in _rows:
		largest = maxf(largest, row.value)
	var room := maxf(size.x - label_width - 180.0, 40.0)
	for i in _rows.size():
		var row: Dictionary = _rows[i]
		var y := 4.0 + i * row_height
		var text_y := y + row_height * 0.65
		draw_string(font, Vector2(0, text_y), row.label, HORIZONTAL_ALIGNMENT_LEFT, label_width - 8, 14)
		var width: float = room * row.value / largest if largest > 0.0 else 0.0
		draw_rect(Rect2(label_width, y + 3, maxf(width, 2.0), row_height - 8), row.color)
		draw_string(font, Vector2(label_width + width + 8, text_y), row.text, HORIZONTAL_ALIGNMENT_LEFT, -1, 14)
