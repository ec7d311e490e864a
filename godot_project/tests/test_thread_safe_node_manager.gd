extends "res://tests/support/test_case.gd"

const THREADS := 4

var _manager: ThreadSafeNodeManager
var _nodes: Array[Node] = []


func begin_test() -> void:
	super()
	_manager = ThreadSafeNodeManager.new()
	add_child(_manager)
	_nodes.clear()


## Frees the manager and whatever test nodes are still alive.
func _finish() -> void:
	_manager.free()
	for node in _nodes:
		if is_instance_valid(node):
			node.free()


func _node(node_name := "") -> Node:
	var node := Node.new()
	node.name = node_name if node_name else "n%d" % _nodes.size()
	_nodes.append(node)
	return node


func test_registered_nodes_are_found_by_name() -> void:
	var player := _node("Player")
	var enemy := _node("Enemy")
	assert_true(_manager.register_node("player", player))
	assert_true(_manager.register_node("enemy", enemy))
	assert_eq(_manager.get_managed_node("player"), player)
	assert_eq(_manager.get_managed_node("enemy"), enemy)
	assert_true(_manager.has_managed_node("player"))
	assert_eq(_manager.get_registered_names(), PackedStringArray(["enemy", "player"]))
	assert_true(_manager.unregister_node("player"))
	assert_eq(_manager.get_managed_node("player"), null)
	assert_false(_manager.has_managed_node("player"))
	assert_eq(_manager.get_registered_names(), PackedStringArray(["enemy"]))
	assert_true(is_instance_valid(player), "unregistering does not free the node")
	_finish()


func test_names_come_back_sorted() -> void:
	for node_name in ["delta", "alpha", "charlie", "bravo"]:
		_manager.register_node(node_name, _node())
	assert_eq(_manager.get_registered_names(), PackedStringArray(["alpha", "bravo", "charlie", "delta"]))
	_finish()


func test_a_node_may_have_several_names() -> void:
	var node := _node()
	assert_true(_manager.register_node("a", node))
	assert_true(_manager.register_node("b", node))
	assert_eq(_manager.get_managed_node("a"), node)
	assert_eq(_manager.get_managed_node("b"), node)
	_finish()


func test_unknown_names_are_a_normal_answer_not_an_error() -> void:
	assert_eq(_manager.get_managed_node("nobody"), null)
	assert_false(_manager.has_managed_node("nobody"))
	assert_false(_manager.unregister_node("nobody"))
	assert_eq(_manager.get_registered_names(), PackedStringArray())
	assert_eq(_manager.cleanup_invalid_references(), 0)
	_finish()


func test_bad_registrations_are_refused_with_clear_errors() -> void:
	var node := _node()
	expect_error("ThreadSafeNodeManager.register_node: the name is empty")
	assert_false(_manager.register_node("", node))
	expect_error("ThreadSafeNodeManager.register_node: the node for \"a\" is null")
	assert_false(_manager.register_node("a", null))
	var freed := Node.new()
	freed.free()
	expect_error("ThreadSafeNodeManager.register_node: the node for \"b\" was freed")
	assert_false(_manager.register_node("b", freed))
	expect_error("ThreadSafeNodeManager.register_node: the node for \"c\" is a Resource, not a Node")
	assert_false(_manager.register_node("c", Resource.new()))
	expect_error("ThreadSafeNodeManager.register_node: the node for \"d\" is of type INT, not an object")
	assert_false(_manager.register_node("d", 7))
	assert_eq(_manager.get_registered_names(), PackedStringArray(), "nothing was registered")
	_finish()


func test_a_name_held_by_a_live_node_is_refused_until_unregistered() -> void:
	var first := _node()
	var second := _node()
	assert_true(_manager.register_node("boss", first))
	assert_true(_manager.register_node("boss", first), "the same node again: fine")
	expect_error("ThreadSafeNodeManager.register_node: \"boss\" is already registered to another live node (instance #%d); call unregister_node(\"boss\") first" % first.get_instance_id())
	assert_false(_manager.register_node("boss", second))
	assert_eq(_manager.get_managed_node("boss"), first, "the first keeps the name")
	assert_true(_manager.unregister_node("boss"))
	assert_true(_manager.register_node("boss", second))
	assert_eq(_manager.get_managed_node("boss"), second)
	_finish()


func test_freed_nodes_answer_null_at_once_and_cleanup_forgets_them() -> void:
	var kept := _node()
	var gone_a := _node()
	var gone_b := _node()
	_manager.register_node("kept", kept)
	_manager.register_node("gone_a", gone_a)
	_manager.register_node("gone_b", gone_b)
	gone_a.free()
	gone_b.free()
	assert_eq(_manager.get_managed_node("gone_a"), null)
	assert_false(_manager.has_managed_node("gone_a"))
	assert_eq(_manager.get_registered_names(), PackedStringArray(["kept"]), "only live nodes are listed")
	assert_true(_manager.unregister_node("gone_a"), "a freed node's name is still known until cleanup")
	assert_eq(_manager.cleanup_invalid_references(), 1, "gone_b")
	assert_eq(_manager.cleanup_invalid_references(), 0)
	assert_false(_manager.unregister_node("gone_b"), "forgotten by the cleanup")
	assert_eq(_manager.get_managed_node("kept"), kept)
	_finish()


func test_a_name_whose_node_was_freed_is_taken_over_without_an_error() -> void:
	var old := _node()
	var fresh := _node()
	_manager.register_node("slot", old)
	old.free()
	assert_true(_manager.register_node("slot", fresh))
	assert_eq(_manager.get_managed_node("slot"), fresh)
	assert_eq(_manager.cleanup_invalid_references(), 0, "nothing stale left behind")
	_finish()


func test_nodes_queue_freed_in_the_tree_answer_null_after_the_frame() -> void:
	var node := _node()
	add_child(node)
	_manager.register_node("in_tree", node)
	node.queue_free()
	assert_eq(_manager.get_managed_node("in_tree"), node, "still alive until the frame ends")
	await get_tree().process_frame
	assert_eq(_manager.get_managed_node("in_tree"), null)
	assert_eq(_manager.cleanup_invalid_references(), 1)
	_finish()


func test_threads_register_look_up_and_unregister_their_own_names_exactly() -> void:
	var per_thread := 300
	var nodes := []
	for t in THREADS:
		var own := []
		for i in per_thread:
			own.append(_node())
		nodes.append(own)
	var results := run_threads(THREADS, func(t: int) -> Array:
		var registered := 0
		var found := 0
		var unregistered := 0
		for i in per_thread:
			if _manager.register_node("t%d_%d" % [t, i], nodes[t][i]):
				registered += 1
		for i in per_thread:
			if _manager.get_managed_node("t%d_%d" % [t, i]) == nodes[t][i] and _manager.has_managed_node("t%d_%d" % [t, i]):
				found += 1
		for i in range(0, per_thread, 2):
			if _manager.unregister_node("t%d_%d" % [t, i]):
				unregistered += 1
		return [registered, found, unregistered])
	for t in THREADS:
		assert_eq(results[t], [per_thread, per_thread, per_thread / 2], "thread %d" % t)
	var expected := PackedStringArray()
	for t in THREADS:
		for i in range(1, per_thread, 2):
			expected.append("t%d_%d" % [t, i])
	expected.sort()
	assert_eq(_manager.get_registered_names(), expected, "exactly the odd names of every thread")
	_finish()


func test_threads_racing_for_one_name_let_exactly_one_win() -> void:
	var contenders := []
	for t in 8:
		contenders.append(_node())
	expect_error("ThreadSafeNodeManager.register_node: \"crown\" is already registered to another live node")
	var won := run_threads(8, func(t: int) -> bool: return _manager.register_node("crown", contenders[t]))
	assert_eq(won.count(true), 1, "one registration won")
	assert_eq(_manager.get_managed_node("crown"), contenders[won.find(true)], "the winner holds the name")
	_finish()


func test_threads_reading_while_the_main_thread_frees_nodes_get_the_node_or_null() -> void:
	var count := 200
	for i in count:
		_manager.register_node("n%d" % i, _node())
	var wrong := count_wrong_lookups_while_freeing(_nodes.duplicate(), THREADS, func(i: int) -> Variant:
		var found = _manager.get_managed_node("n%d" % i)
		_manager.has_managed_node("n%d" % i)
		_manager.get_registered_names()
		return found)
	assert_eq(wrong, 0, "each lookup gave its own node or null")
	assert_eq(_manager.get_registered_names(), PackedStringArray())
	assert_eq(_manager.cleanup_invalid_references(), count)
	_finish()


func test_cleanup_on_the_main_thread_while_threads_register_loses_no_live_node() -> void:
	var doomed := []
	for i in 100:
		var node := _node()
		doomed.append(node)
		_manager.register_node("doomed%d" % i, node)
	var live := []
	for t in THREADS:
		var own := []
		for i in 200:
			own.append(_node())
		live.append(own)
	for node in doomed:
		node.free()
	var started := Semaphore.new()
	var threads: Array[Thread] = []
	for t in THREADS:
		var thread := Thread.new()
		thread.start(func() -> void:
			started.post()
			for i in 200:
				_manager.register_node("live%d_%d" % [t, i], live[t][i]))
		threads.append(thread)
	for t in THREADS:
		started.wait()
	var removed := 0
	for attempt in 50:
		removed += _manager.cleanup_invalid_references()
	for thread in threads:
		thread.wait_to_finish()
	assert_eq(removed, 100, "exactly the freed ones")
	assert_eq(_manager.get_registered_names().size(), THREADS * 200, "every live registration kept")
	_finish()
