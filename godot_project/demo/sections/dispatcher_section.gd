extends RefCounted
## Demo section 3: worker threads spawn sprites through MainThreadDispatcher.safe_add_child, a
## frame budget at a time; call_deferred adds the same flood in one long frame.

const TITLE := "Dispatcher"
const LESSON := "Worker threads may build nodes but not add them to the scene: they queue the add_child for the main thread. MainThreadDispatcher runs that queue a frame budget at a time, so a flood of work spreads over frames; call_deferred runs all of it in one frame."
const FrameGraph := preload("res://demo/widgets/frame_graph.gd")

const THREADS := 4
const FIELD := Vector2(480, 300)

var _field: Node2D
var _stats: Label
var _budget: SpinBox
var _graph: FrameGraph
var _texture: Texture2D


## Builds [param count] sprites on each of [param threads] threads and sends them to
## [param field]: through the dispatcher, or with call_deferred. Returns the threads to join.
static func spawn(field: Node2D, texture: Texture2D, threads: int, count: int, deferred: bool) -> Array[Thread]:
	var started: Array[Thread] = []
	for t in threads:
		var thread := Thread.new()
		thread.start(func() -> void:
			var rng := RandomNumberGenerator.new()
			for i in count:
				var sprite := Sprite2D.new()  # Building an orphan node off the main thread is fine.
				sprite.texture = texture
				sprite.position = Vector2(rng.randf() * FIELD.x, rng.randf() * FIELD.y)
				sprite.modulate = Color.from_hsv(float(t) / threads, 0.7, 1.0)
				if deferred:
					field.add_child.call_deferred(sprite)
				else:
					MainThreadDispatcher.safe_add_child(field, sprite))
		started.append(thread)
	return started


static func make_texture() -> Texture2D:
	var image := Image.create_empty(4, 4, false, Image.FORMAT_RGBA8)
	image.fill(Color.WHITE)
	return ImageTexture.create_from_image(image)


## Headless: the same flood both ways; frames used and the longest frame. Returns {headers, rows, ok}.
func run_headless(host: Node) -> Dictionary:
	var tree := host.get_tree()
	var texture := make_texture()
	var per_thread := 5000
	var rows := []
	var ok := true
	for deferred in [false, true]:
		var field := Node2D.new()
		host.add_child(field)
		var over_before: int = MainThreadDispatcher.get_stats().drains_over_budget
		var threads := spawn(field, texture, THREADS, per_thread, deferred)
		for thread in threads:
			thread.wait_to_finish()  # Everything is queued before the first frame.
		var frames := 0
		var worst := 0.0
		while field.get_child_count() < THREADS * per_thread and frames < 10_000:
			var frame_start := Time.get_ticks_usec()
			await tree.process_frame
			worst = maxf(worst, (Time.get_ticks_usec() - frame_start) / 1000.0)
			frames += 1
		var added := field.get_child_count()
		var all_added := added == THREADS * per_thread
		ok = ok and all_added
		var note := "all added; "
		if deferred:
			note += "all in one frame" if frames <= 2 else "%d frames" % frames
		else:
			var stats := MainThreadDispatcher.get_stats()
			note += "%d drains stopped at the %d us budget" % [stats.drains_over_budget - over_before, stats.frame_budget_usec]
			ok = ok and frames > 1
		rows.append(["call_deferred" if deferred else "safe_add_child", added, frames, "%.1f" % worst,
				note if all_added else "WRONG: %d of %d added" % [added, THREADS * per_thread]])
		field.queue_free()
		await tree.process_frame
	return {"headers": ["variant", "nodes added", "frames", "worst frame ms", "check"], "rows": rows, "ok": ok}


## Interactive: a field of sprites, spawn buttons, the budget, live queue stats and frame times.
func build_ui(parent: Control) -> void:
	_texture = make_texture()
	var row := HBoxContainer.new()
	row.add_theme_constant_override("separation", 16)
	parent.add_child(row)
	var frame := Panel.new()
	frame.custom_minimum_size = FIELD
	frame.clip_contents = true
	row.add_child(frame)
	_field = Node2D.new()
	frame.add_child(_field)

	var side := VBoxContainer.new()
	row.add_child(side)
	for spec in [["Spawn 20 000 (dispatcher)", false], ["Spawn 20 000 (call_deferred)", true]]:
		var button := Button.new()
		button.text = spec[0]
		button.pressed.connect(func() -> void:
			for thread in spawn(_field, _texture, THREADS, 5000, spec[1]):
				thread.wait_to_finish())
		side.add_child(button)
	var clear := Button.new()
	clear.text = "Clear"
	clear.pressed.connect(func() -> void:
		for child in _field.get_children():
			child.queue_free())
	side.add_child(clear)
	var budget_row := HBoxContainer.new()
	side.add_child(budget_row)
	var budget_label := Label.new()
	budget_label.text = "Frame budget (µs):"
	budget_row.add_child(budget_label)
	_budget = SpinBox.new()
	_budget.max_value = 100_000
	_budget.step = 500
	_budget.value = MainThreadDispatcher.get_stats().frame_budget_usec
	_budget.value_changed.connect(func(v: float) -> void: MainThreadDispatcher.set_frame_budget_usec(int(v)))
	budget_row.add_child(_budget)
	_stats = Label.new()
	side.add_child(_stats)
	_graph = FrameGraph.new()
	side.add_child(_graph)
	var tree := parent.get_tree()
	tree.process_frame.connect(_update)
	parent.tree_exiting.connect(func() -> void: tree.process_frame.disconnect(_update))


func _update() -> void:
	var stats := MainThreadDispatcher.get_stats()
	_stats.text = "sprites: %d\nqueued: %d (deepest %d)\nlast drain: %d µs of %d\ndrains cut by the budget: %d" % [
			_field.get_child_count(), stats.pending, stats.max_depth, stats.last_drain_usec,
			stats.frame_budget_usec, stats.drains_over_budget]
