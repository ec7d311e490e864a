extends RefCounted
## Demo section 2: a Mandelbrot image rendered tile by tile on worker threads, with a progress
## bar per tile, a cancel button and a frame-time graph; or on the main thread, for contrast.

const TITLE := "Tasks"
const LESSON := "AsyncTaskProcessor renders each tile on a worker and hands it to the main thread, which only pastes it in: the frames stay flat and you can cancel. Rendered on the main thread, the same image freezes the game until it is done."
const FrameGraph := preload("res://demo/widgets/frame_graph.gd")

const TILES_PER_SIDE := 4
const TILES := TILES_PER_SIDE * TILES_PER_SIDE
const HOME := Rect2(-2.2, -1.5, 3.0, 3.0)

var _processor: AsyncTaskProcessor
var _image: Image
var _texture: ImageTexture
var _handles: Array[TaskHandle] = []
var _view := HOME
var _bars: Array[ProgressBar] = []
var _status: Label
var _graph: FrameGraph
var _started_usec := 0


## Renders one square tile of the image; runs on a worker ([param in_task]: it reports progress
## and stops when cancelled), or on the main thread for contrast. Returns its RGB8 pixels, or an
## empty array if the task was cancelled.
static func render_tile(origin: Vector2i, tile: int, image_size: int, view: Rect2, depth: int, in_task := true) -> PackedByteArray:
	var pixels := PackedByteArray()
	pixels.resize(tile * tile * 3)
	var i := 0
	for y in tile:
		if in_task and AsyncTaskProcessor.is_cancelled():
			return PackedByteArray()
		for x in tile:
			var c := view.position + view.size * Vector2(origin.x + x, origin.y + y) / image_size
			var z := Vector2.ZERO
			var n := 0
			while n < depth and z.length_squared() <= 4.0:
				z = Vector2(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c
				n += 1
			var t := 0.0 if n == depth else sqrt(float(n) / depth)
			pixels[i] = int(255 * t * t)
			pixels[i + 1] = int(255 * t)
			pixels[i + 2] = int(255 * minf(1.0, t * 1.6))
			i += 3
		if in_task:
			AsyncTaskProcessor.report_progress(float(y + 1) / tile)
	return pixels


## Pastes a finished tile into [param image]; an empty tile (cancelled) is left out.
static func paste(image: Image, origin: Vector2i, tile: int, pixels: PackedByteArray) -> void:
	if pixels.is_empty():
		return
	var tile_image := Image.create_from_data(tile, tile, false, Image.FORMAT_RGB8, pixels)
	image.blit_rect(tile_image, Rect2i(0, 0, tile, tile), origin)


## Starts one task per tile; each pastes itself into [param image] when it finishes.
static func start_render(processor: AsyncTaskProcessor, image: Image, view: Rect2, depth: int) -> Array[TaskHandle]:
	var image_size := image.get_width()
	var tile := image_size / TILES_PER_SIDE
	var handles: Array[TaskHandle] = []
	for index in TILES:
		var origin := Vector2i(index % TILES_PER_SIDE, index / TILES_PER_SIDE) * tile
		var handle := processor.run(render_tile.bind(origin, tile, image_size, view, depth))
		handle.finished.connect(func(pixels: Variant) -> void:
			paste(image, origin, tile, pixels if pixels is PackedByteArray else PackedByteArray()))
		handles.append(handle)
	return handles


## Renders the whole image on the calling thread, tile by tile.
static func render_here(image: Image, view: Rect2, depth: int) -> void:
	var image_size := image.get_width()
	var tile := image_size / TILES_PER_SIDE
	for index in TILES:
		var origin := Vector2i(index % TILES_PER_SIDE, index / TILES_PER_SIDE) * tile
		paste(image, origin, tile, render_tile(origin, tile, image_size, view, depth, false))


static func _all_done(handles: Array[TaskHandle]) -> bool:
	return handles.all(func(h: TaskHandle) -> bool: return h.is_done())


## Headless: main thread vs workers on the same image (identical pixels, flat frames), then a
## render cancelled midway. Returns {headers, rows, ok}.
func run_headless(host: Node) -> Dictionary:
	var processor := AsyncTaskProcessor.new()
	host.add_child(processor)
	var size := 128
	var depth := 96
	var tree := host.get_tree()

	var reference := Image.create_empty(size, size, false, Image.FORMAT_RGB8)
	var started := Time.get_ticks_usec()
	render_here(reference, HOME, depth)
	var main_msec := (Time.get_ticks_usec() - started) / 1000.0

	var image := Image.create_empty(size, size, false, Image.FORMAT_RGB8)
	started = Time.get_ticks_usec()
	var handles := start_render(processor, image, HOME, depth)
	var worst_frame := 0.0
	var frames := 0
	while not (_all_done(handles) and processor.get_stats().pending + processor.get_stats().running == 0):
		var frame_start := Time.get_ticks_usec()
		await tree.process_frame
		worst_frame = maxf(worst_frame, (Time.get_ticks_usec() - frame_start) / 1000.0)
		frames += 1
	await tree.process_frame  # The last tiles are pasted during this frame's delivery.
	var workers_msec := (Time.get_ticks_usec() - started) / 1000.0
	var identical := image.get_data() == reference.get_data()

	var cancel_image := Image.create_empty(512, 512, false, Image.FORMAT_RGB8)
	var cancelled_handles := start_render(processor, cancel_image, HOME, 400)
	while not cancelled_handles.any(func(h: TaskHandle) -> bool: return h.is_done()):
		await tree.process_frame
	for handle in cancelled_handles:
		handle.cancel()
	processor.wait_all()  # Delivers every tile's end: completed ones pasted, the rest cancelled.
	var completed := cancelled_handles.filter(func(h: TaskHandle) -> bool:
		return h.get_status() == AsyncTaskProcessor.STATUS_COMPLETED).size()
	var cancelled := cancelled_handles.filter(func(h: TaskHandle) -> bool:
		return h.get_status() == AsyncTaskProcessor.STATUS_CANCELLED).size()
	var cancel_ok := completed + cancelled == TILES and cancelled > 0
	processor.queue_free()

	var workers := processor.worker_count if processor.worker_count > 0 else OS.get_processor_count()
	var rows := [
		["main thread", "%d/%d" % [TILES, TILES], "%.0f" % main_msec, "%.0f" % main_msec,
				"one frame frozen for the whole render"],
		["AsyncTaskProcessor", "%d/%d" % [TILES, TILES], "%.0f" % workers_msec, "%.1f" % worst_frame,
				("same pixels; %d frames meanwhile, %d workers" % [frames, workers]) if identical else "WRONG: pixels differ"],
		["cancel midway", "%d done" % completed, "-", "-",
				("%d tiles cancelled, none lost" % cancelled) if cancel_ok else "WRONG: %d done + %d cancelled" % [completed, cancelled]],
	]
	return {
		"headers": ["variant", "tiles", "ms", "worst frame ms", "check"],
		"rows": rows,
		"ok": identical and cancel_ok,
	}


## Interactive: the image, a progress bar per tile, buttons and the frame-time graph.
func build_ui(parent: Control) -> void:
	_processor = AsyncTaskProcessor.new()
	parent.add_child(_processor)
	_image = Image.create_empty(512, 512, false, Image.FORMAT_RGB8)
	_texture = ImageTexture.create_from_image(_image)

	var row := HBoxContainer.new()
	row.add_theme_constant_override("separation", 16)
	parent.add_child(row)
	var picture := TextureRect.new()
	picture.texture = _texture
	picture.tooltip_text = "Click to zoom in there (cancels the render in progress)."
	picture.gui_input.connect(_on_picture_input.bind(picture))
	row.add_child(picture)

	var side := VBoxContainer.new()
	row.add_child(side)
	var buttons := HBoxContainer.new()
	side.add_child(buttons)
	for spec in [["Render on workers", _render_on_workers], ["Render on main thread", _render_on_main],
			["Cancel", _cancel], ["Reset view", _reset_view]]:
		var button := Button.new()
		button.text = spec[0]
		button.pressed.connect(spec[1])
		buttons.add_child(button)
	var grid := GridContainer.new()
	grid.columns = TILES_PER_SIDE
	side.add_child(grid)
	for i in TILES:
		var bar := ProgressBar.new()
		bar.custom_minimum_size = Vector2(90, 22)
		bar.max_value = 1.0
		bar.step = 0.0
		grid.add_child(bar)
		_bars.append(bar)
	_status = Label.new()
	_status.autowrap_mode = TextServer.AUTOWRAP_WORD_SMART
	_status.custom_minimum_size.x = 380
	side.add_child(_status)
	_graph = FrameGraph.new()
	side.add_child(_graph)
	var tree := parent.get_tree()
	tree.process_frame.connect(_update)
	parent.tree_exiting.connect(func() -> void: tree.process_frame.disconnect(_update))
	_render_on_workers()


func _render_on_workers() -> void:
	_cancel()
	_started_usec = Time.get_ticks_usec()
	_handles = start_render(_processor, _image, _view, 300)


func _render_on_main() -> void:
	_cancel()
	_started_usec = 0
	var started := Time.get_ticks_usec()
	render_here(_image, _view, 300)
	_texture.update(_image)
	_status.text = "Main thread: the game was frozen for %.0f ms." % ((Time.get_ticks_usec() - started) / 1000.0)


func _cancel() -> void:
	for handle in _handles:
		handle.cancel()


func _reset_view() -> void:
	_view = HOME
	_render_on_workers()


func _on_picture_input(event: InputEvent, picture: TextureRect) -> void:
	if event is InputEventMouseButton and event.pressed and event.button_index == MOUSE_BUTTON_LEFT:
		var at: Vector2 = _view.position + _view.size * event.position / picture.size
		_view = Rect2(at - _view.size / 6.0, _view.size / 3.0)
		_render_on_workers()


func _update() -> void:
	if _started_usec == 0:
		return
	var done := 0
	for i in _handles.size():
		_bars[i].value = _handles[i].get_progress()
		if _handles[i].is_done():
			done += 1
	_texture.update(_image)
	if done < _handles.size():
		_status.text = "Workers: %d of %d tiles, %.0f ms so far. Frames stay flat (see the graph)." % [
				done, _handles.size(), (Time.get_ticks_usec() - _started_usec) / 1000.0]
	elif _started_usec > 0:
		var cancelled := _handles.filter(func(h: TaskHandle) -> bool:
			return h.get_status() == AsyncTaskProcessor.STATUS_CANCELLED).size()
		_status.text = "Workers: done in %.0f ms (%d tiles cancelled); the worst frame meanwhile took %.1f ms." % [
				(Time.get_ticks_usec() - _started_usec) / 1000.0, cancelled, _graph.worst_msec()]
		_started_usec = 0
