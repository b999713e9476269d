// Command groups drives a classic consumer group through franz-go (kgo with its default
// cooperative-sticky balancer) and its admin client (kadm) against one broker, and checks what a
// Kafka broker's group coordinator must do: assign a topic's partitions across two members, keep
// their commits, describe the group and its lag, hand a leaving member's partitions to the other
// one without revoking the survivor's, and delete offsets and the group.
//
// It is run by netd/tests/groups_franz.rs against netd, and was checked by hand against Apache
// Kafka: `go run . -bootstrap 127.0.0.1:9092`. It prints one "ok:" line per check and "PASS" at the
// end; the first failed check prints "FAIL: ..." and exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const partitionCount = 4

var (
	bootstrap   = flag.String("bootstrap", "127.0.0.1:9092", "broker address")
	topic       = flag.String("topic", "groups-franz", "topic to create (must not exist)")
	group       = flag.String("group", "groups-franz-group", "consumer group id")
	recordCount = flag.Int("records", 400, "records produced in each phase")
	timeout     = flag.Duration("timeout", 50*time.Second, "the whole run's deadline")
	waitMax     = flag.Duration("wait", 20*time.Second, "how long one wait for a group state may take")
	logLevel    = flag.String("log", "info", "franz-go log level to stderr: none, error, warn, info, debug")
)

var start = time.Now()

func fail(format string, args ...any) {
	fmt.Printf("FAIL (%.1fs): %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	os.Exit(1)
}

func ok(format string, args ...any) {
	fmt.Printf("ok (%.1fs): %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func logger(name string) kgo.Opt {
	var level kgo.LogLevel
	switch *logLevel {
	case "none":
		level = kgo.LogLevelNone
	case "error":
		level = kgo.LogLevelError
	case "warn":
		level = kgo.LogLevelWarn
	case "info":
		level = kgo.LogLevelInfo
	case "debug":
		level = kgo.LogLevelDebug
	default:
		fail("unknown -log %q", *logLevel)
	}
	return kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, func() string {
		return fmt.Sprintf("%.3fs [%s] ", time.Since(start).Seconds(), name)
	}))
}

// waitFor polls check until it returns "" (done) or the wait times out, then fails with the last
// reason check gave.
func waitFor(ctx context.Context, what string, check func() string) {
	deadline := time.Now().Add(*waitMax)
	for {
		reason := check()
		if reason == "" {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			fail("timed out after %s waiting for %s: %s", *waitMax, what, reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type position struct {
	partition int32
	offset    int64
}

// consumer is one group member: a kgo client and the loop that polls, records what it got and
// commits it before allowing the next rebalance (kgo.BlockRebalanceOnPoll), so a partition that
// moves to the other member resumes exactly after the last record consumed here.
type consumer struct {
	name   string
	client *kgo.Client

	mu          sync.Mutex
	owned       map[int32]bool
	assigned    int // partitions ever assigned by callbacks
	revoked     int // partitions ever revoked by callbacks
	lost        int // partitions ever lost by callbacks
	consumed    map[position]string
	commitError error

	cancel context.CancelFunc
	done   chan struct{}
}

func (c *consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, partition := range assigned[*topic] {
		c.owned[partition] = true
		c.assigned++
	}
}

func (c *consumer) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, partition := range revoked[*topic] {
		delete(c.owned, partition)
		c.revoked++
	}
}

func (c *consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, partition := range lost[*topic] {
		delete(c.owned, partition)
		c.lost++
	}
}

func newConsumer(name string) *consumer {
	c := &consumer{name: name, owned: map[int32]bool{}, consumed: map[position]string{}, done: make(chan struct{})}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(*bootstrap),
		kgo.ClientID(name),
		kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Kafka's defaults are 3 s heartbeats in a 45 s session; faster heartbeats only make a
		// rebalance start sooner.
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		logger(name),
	)
	if err != nil {
		fail("%s: new client: %v", name, err)
	}
	c.client = client
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c
}

func (c *consumer) run(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fetches := c.client.PollFetches(pollCtx)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(os.Stderr, "[%s] fetch error %s/%d: %v\n", c.name, t, p, err)
			}
		})
		c.mu.Lock()
		fetches.EachRecord(func(record *kgo.Record) {
			c.consumed[position{record.Partition, record.Offset}] = string(record.Value)
		})
		c.mu.Unlock()
		if !fetches.Empty() {
			if err := c.client.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
				c.mu.Lock()
				c.commitError = err
				c.mu.Unlock()
				fmt.Fprintf(os.Stderr, "[%s] commit error: %v\n", c.name, err)
			}
		}
		c.client.AllowRebalance()
	}
}

// close stops the poll loop and closes the client, which leaves the group.
func (c *consumer) close() {
	c.cancel()
	<-c.done
	c.client.Close()
}

func (c *consumer) ownedSorted() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var owned []int32
	for partition := range c.owned {
		owned = append(owned, partition)
	}
	sort.Slice(owned, func(i, j int) bool { return owned[i] < owned[j] })
	return owned
}

func (c *consumer) counts() (assigned, revoked, lost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assigned, c.revoked, c.lost
}

// produced maps each record's position to its value, as the producer got it acknowledged.
var produced = map[position]string{}

func produce(ctx context.Context, producer *kgo.Client, phase string) {
	records := make([]*kgo.Record, *recordCount)
	for index := range records {
		records[index] = &kgo.Record{
			Topic: *topic,
			Key:   fmt.Appendf(nil, "key-%d", index),
			Value: fmt.Appendf(nil, "%s-%d", phase, index),
		}
	}
	results := producer.ProduceSync(ctx, records...)
	if err := results.FirstErr(); err != nil {
		fail("produce %s: %v", phase, err)
	}
	for _, result := range results {
		position := position{result.Record.Partition, result.Record.Offset}
		if _, exists := produced[position]; exists {
			fail("produce %s: two records acknowledged at partition %d offset %d", phase, position.partition, position.offset)
		}
		produced[position] = string(result.Record.Value)
	}
	ok("produced %d records (%s)", len(records), phase)
}

// endOffsets lists the topic's end offsets and checks they account for every produced record.
func endOffsets(ctx context.Context, admin *kadm.Client) map[int32]int64 {
	listed, err := admin.ListEndOffsets(ctx, *topic)
	if err != nil {
		fail("ListEndOffsets: %v", err)
	}
	ends := map[int32]int64{}
	listed.Each(func(offset kadm.ListedOffset) {
		if offset.Err != nil {
			fail("ListEndOffsets %s/%d: %v", offset.Topic, offset.Partition, offset.Err)
		}
		ends[offset.Partition] = offset.Offset
	})
	total := int64(0)
	for partition := int32(0); partition < partitionCount; partition++ {
		end, exists := ends[partition]
		if !exists {
			fail("ListEndOffsets has no partition %d: %v", partition, ends)
		}
		total += end
	}
	if total != int64(len(produced)) {
		fail("end offsets %v add up to %d, %d records were produced", ends, total, len(produced))
	}
	return ends
}

// consumedAll reports "" once the consumers between them consumed every produced record, with the
// value it was produced with.
func consumedAll(consumers ...*consumer) string {
	missing := 0
	var example string
	for position, value := range produced {
		found := false
		for _, c := range consumers {
			c.mu.Lock()
			got, exists := c.consumed[position]
			c.mu.Unlock()
			if exists {
				if got != value {
					fail("%s consumed %q at partition %d offset %d, %q was produced there", c.name, got, position.partition, position.offset, value)
				}
				found = true
			}
		}
		if !found {
			missing++
			example = fmt.Sprintf("partition %d offset %d", position.partition, position.offset)
		}
	}
	if missing > 0 {
		return fmt.Sprintf("%d of %d records not consumed yet (e.g. %s)", missing, len(produced), example)
	}
	return ""
}

// committedIsEnd reports "" once the group's committed offsets are the end offsets.
func committedIsEnd(ctx context.Context, admin *kadm.Client, ends map[int32]int64) string {
	fetched, err := admin.FetchOffsets(ctx, *group)
	if err != nil {
		return fmt.Sprintf("FetchOffsets: %v", err)
	}
	committed := map[int32]int64{}
	var problems []string
	fetched.Each(func(offset kadm.OffsetResponse) {
		if offset.Err != nil {
			problems = append(problems, fmt.Sprintf("%s/%d: %v", offset.Topic, offset.Partition, offset.Err))
		}
		if offset.Topic == *topic {
			committed[offset.Partition] = offset.At
		}
	})
	for partition, end := range ends {
		if committed[partition] != end {
			problems = append(problems, fmt.Sprintf("partition %d committed %d, end %d", partition, committed[partition], end))
		}
	}
	if len(committed) != len(ends) {
		problems = append(problems, fmt.Sprintf("committed partitions %v, end offsets %v", committed, ends))
	}
	return strings.Join(problems, "; ")
}

// describe checks the group is Stable with exactly the given members, each assigned what its
// callbacks say it owns, together every partition once.
func describe(ctx context.Context, admin *kadm.Client, consumers ...*consumer) string {
	described, err := admin.DescribeGroups(ctx, *group)
	if err != nil {
		return fmt.Sprintf("DescribeGroups: %v", err)
	}
	g, exists := described[*group]
	if !exists {
		return fmt.Sprintf("DescribeGroups returned no %s: %v", *group, described)
	}
	if g.Err != nil {
		return fmt.Sprintf("DescribeGroups %s: %v %s", *group, g.Err, g.ErrMessage)
	}
	if g.State != "Stable" {
		return fmt.Sprintf("state %q, want Stable", g.State)
	}
	if g.ProtocolType != "consumer" || g.Protocol != "cooperative-sticky" {
		return fmt.Sprintf("protocol type %q protocol %q, want consumer cooperative-sticky", g.ProtocolType, g.Protocol)
	}
	if len(g.Members) != len(consumers) {
		return fmt.Sprintf("%d members, want %d: %+v", len(g.Members), len(consumers), g.Members)
	}
	seen := map[int32]string{}
	for _, member := range g.Members {
		var c *consumer
		for _, candidate := range consumers {
			if candidate.name == member.ClientID {
				c = candidate
			}
		}
		if c == nil {
			return fmt.Sprintf("member %s has client id %q, not one of ours", member.MemberID, member.ClientID)
		}
		if memberID, _ := c.client.GroupMetadata(); memberID != member.MemberID {
			return fmt.Sprintf("member of %s is %q, the client says %q", c.name, member.MemberID, memberID)
		}
		assignment, isConsumer := member.Assigned.AsConsumer()
		if !isConsumer {
			return fmt.Sprintf("member %s has no consumer assignment", member.MemberID)
		}
		var partitions []int32
		for _, assigned := range assignment.Topics {
			if assigned.Topic != *topic {
				return fmt.Sprintf("member %s assigned topic %q", member.MemberID, assigned.Topic)
			}
			for _, partition := range assigned.Partitions {
				if other, taken := seen[partition]; taken {
					return fmt.Sprintf("partition %d assigned to %s and %s", partition, other, c.name)
				}
				seen[partition] = c.name
				partitions = append(partitions, partition)
			}
		}
		sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
		if owned := c.ownedSorted(); fmt.Sprint(owned) != fmt.Sprint(partitions) {
			return fmt.Sprintf("DescribeGroups assigns %v to %s, its callbacks say %v", partitions, c.name, owned)
		}
	}
	if len(seen) != partitionCount {
		return fmt.Sprintf("assignments cover %d of %d partitions: %v", len(seen), partitionCount, seen)
	}
	return ""
}

// lagIsZero checks kadm's Lag (DescribeGroups + OffsetFetch + ListOffsets) for the group.
func lagIsZero(ctx context.Context, admin *kadm.Client, wantMembers int) {
	lags, err := admin.Lag(ctx, *group)
	if err != nil {
		fail("Lag: %v", err)
	}
	lag, exists := lags[*group]
	if !exists {
		fail("Lag returned no %s", *group)
	}
	if err := lag.Error(); err != nil {
		fail("Lag %s: %v", *group, err)
	}
	if len(lag.Members) != wantMembers {
		fail("Lag describes %d members, want %d", len(lag.Members), wantMembers)
	}
	partitions := 0
	for _, memberLag := range lag.Lag.Sorted() {
		if memberLag.Topic != *topic {
			continue
		}
		partitions++
		if memberLag.Err != nil || memberLag.Lag != 0 {
			fail("Lag %s/%d: lag %d (commit %d, end %d), err %v", memberLag.Topic, memberLag.Partition, memberLag.Lag, memberLag.Commit.At, memberLag.End.Offset, memberLag.Err)
		}
		if wantMembers > 0 && memberLag.IsEmpty() {
			fail("Lag %s/%d has no member", memberLag.Topic, memberLag.Partition)
		}
	}
	if partitions != partitionCount || lag.Lag.Total() != 0 {
		fail("Lag covers %d partitions with total %d, want %d partitions with 0", partitions, lag.Lag.Total(), partitionCount)
	}
	ok("Lag: %d partitions, total lag 0, %d members", partitions, wantMembers)
}

func main() {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	go func() {
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			fail("the whole run took longer than -timeout %s", *timeout)
		}
	}()

	// The producer: kgo's defaults (idempotent, acks=all).
	producer, err := kgo.NewClient(kgo.SeedBrokers(*bootstrap), kgo.ClientID("producer"), logger("producer"))
	if err != nil {
		fail("new producer: %v", err)
	}
	defer producer.Close()
	admin := kadm.NewClient(producer)

	created, err := admin.CreateTopic(ctx, partitionCount, 1, nil, *topic)
	if err != nil || created.Err != nil {
		fail("CreateTopic %s: %v %v", *topic, err, created.Err)
	}
	ok("created topic %s with %d partitions", *topic, partitionCount)
	waitFor(ctx, "the topic's metadata", func() string {
		metadata, err := admin.Metadata(ctx, *topic)
		if err != nil {
			return err.Error()
		}
		detail, exists := metadata.Topics[*topic]
		if !exists || detail.Err != nil || len(detail.Partitions) != partitionCount {
			return fmt.Sprintf("metadata %+v", detail)
		}
		return ""
	})

	// Phase 1: records first, then two members join one after the other and split the topic.
	produce(ctx, producer, "first")
	ends := endOffsets(ctx, admin)
	for partition, end := range ends {
		if end == 0 {
			fail("partition %d got no record of the first %d (the test needs every partition used): %v", partition, *recordCount, ends)
		}
	}
	a := newConsumer("consumer-a")
	waitFor(ctx, "consumer-a to own every partition", func() string {
		if owned := a.ownedSorted(); len(owned) != partitionCount {
			return fmt.Sprintf("consumer-a owns %v", owned)
		}
		return ""
	})
	ok("consumer-a joined and owns all %d partitions", partitionCount)
	b := newConsumer("consumer-b")
	waitFor(ctx, "the partitions to be split 2/2 between consumer-a and consumer-b", func() string {
		ownedA, ownedB := a.ownedSorted(), b.ownedSorted()
		if len(ownedA) != 2 || len(ownedB) != 2 {
			return fmt.Sprintf("consumer-a owns %v, consumer-b owns %v", ownedA, ownedB)
		}
		return ""
	})
	ok("consumer-a owns %v, consumer-b owns %v", a.ownedSorted(), b.ownedSorted())

	// Phase 2: more records while both are members; each partition's new records go to its owner.
	produce(ctx, producer, "second")
	ends = endOffsets(ctx, admin)
	waitFor(ctx, "every record to be consumed", func() string { return consumedAll(a, b) })
	for _, c := range []*consumer{a, b} {
		owned := map[int32]bool{}
		for _, partition := range c.ownedSorted() {
			owned[partition] = true
		}
		c.mu.Lock()
		for position, value := range c.consumed {
			if strings.HasPrefix(value, "second-") && !owned[position.partition] {
				fail("%s consumed %q from partition %d, which it does not own", c.name, value, position.partition)
			}
		}
		c.mu.Unlock()
	}
	ok("every one of %d records consumed, each second-phase record by its partition's owner", len(produced))
	waitFor(ctx, "the group's commits to reach the end offsets", func() string { return committedIsEnd(ctx, admin, ends) })
	ok("FetchOffsets equals ListEndOffsets %v", ends)
	waitFor(ctx, "DescribeGroups to show a Stable group of both members", func() string { return describe(ctx, admin, a, b) })
	ok("DescribeGroups: Stable, consumer cooperative-sticky, 2 members covering %d partitions", partitionCount)
	lagIsZero(ctx, admin, 2)
	listed, err := admin.ListGroups(ctx)
	if err != nil {
		fail("ListGroups: %v", err)
	}
	if listedGroup, exists := listed[*group]; !exists || listedGroup.ProtocolType != "consumer" || listedGroup.State != "Stable" {
		fail("ListGroups has %+v for %s (exists %v), want protocol type consumer, state Stable: %v", listedGroup, *group, exists, listed)
	}
	ok("ListGroups lists %s as a Stable consumer group", *group)

	// Phase 3: consumer-b leaves; consumer-a takes its partitions and keeps its own (cooperative).
	_, revokedBefore, lostBefore := a.counts()
	ownedBefore := a.ownedSorted()
	b.close()
	ok("consumer-b closed (left the group)")
	waitFor(ctx, "consumer-a to own every partition again", func() string {
		if owned := a.ownedSorted(); len(owned) != partitionCount {
			return fmt.Sprintf("consumer-a owns %v", owned)
		}
		return ""
	})
	if _, revoked, lost := a.counts(); revoked != revokedBefore || lost != lostBefore {
		fail("consumer-a had %d partitions revoked and %d lost when consumer-b left (cooperative rebalancing keeps them); it owned %v", revoked-revokedBefore, lost-lostBefore, ownedBefore)
	}
	ok("consumer-a owns all partitions again without revoking its own %v", ownedBefore)
	produce(ctx, producer, "third")
	ends = endOffsets(ctx, admin)
	waitFor(ctx, "consumer-a to consume the third-phase records", func() string {
		a.mu.Lock()
		defer a.mu.Unlock()
		missing := 0
		for position, value := range produced {
			if strings.HasPrefix(value, "third-") && a.consumed[position] != value {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Sprintf("%d third-phase records not consumed by consumer-a", missing)
		}
		return ""
	})
	ok("consumer-a consumed every third-phase record")
	waitFor(ctx, "the group's commits to reach the end offsets", func() string { return committedIsEnd(ctx, admin, ends) })
	ok("FetchOffsets equals ListEndOffsets %v", ends)
	waitFor(ctx, "DescribeGroups to show a Stable group of consumer-a alone", func() string { return describe(ctx, admin, a) })
	ok("DescribeGroups: Stable, 1 member with all %d partitions", partitionCount)
	lagIsZero(ctx, admin, 1)
	a.mu.Lock()
	commitError := errors.Join(a.commitError, b.commitError)
	a.mu.Unlock()
	if commitError != nil {
		fail("a commit failed: %v", commitError)
	}

	// Phase 4: the last member leaves; the group is Empty and keeps its offsets until they and then
	// the group are deleted.
	a.close()
	waitFor(ctx, "the group to be Empty", func() string {
		described, err := admin.DescribeGroups(ctx, *group)
		if err != nil {
			return err.Error()
		}
		if g := described[*group]; g.Err != nil || g.State != "Empty" || len(g.Members) != 0 {
			return fmt.Sprintf("%+v", g)
		}
		return ""
	})
	ok("consumer-a closed; the group is Empty")
	if reason := committedIsEnd(ctx, admin, ends); reason != "" {
		fail("an Empty group keeps its offsets: %s", reason)
	}
	lagIsZero(ctx, admin, 0)
	deleted, err := admin.DeleteOffsets(ctx, *group, kadm.TopicsSet{*topic: {0: {}}})
	if err != nil {
		fail("DeleteOffsets: %v", err)
	}
	if err, exists := deleted.Lookup(*topic, 0); !exists || err != nil {
		fail("DeleteOffsets %s/0: exists %v, err %v", *topic, exists, err)
	}
	fetched, err := admin.FetchOffsets(ctx, *group)
	if err != nil {
		fail("FetchOffsets after DeleteOffsets: %v", err)
	}
	if offset, exists := fetched.Lookup(*topic, 0); exists && offset.At >= 0 {
		fail("partition 0 still has committed offset %d after DeleteOffsets", offset.At)
	}
	if offset, exists := fetched.Lookup(*topic, 1); !exists || offset.At != ends[1] {
		fail("partition 1 lost its commit in DeleteOffsets of partition 0: %+v (exists %v)", offset, exists)
	}
	ok("DeleteOffsets removed partition 0's commit and kept the others")
	deletedGroup, err := admin.DeleteGroup(ctx, *group)
	if err != nil || deletedGroup.Err != nil {
		fail("DeleteGroup: %v %v %s", err, deletedGroup.Err, deletedGroup.ErrMessage)
	}
	listed, err = admin.ListGroups(ctx)
	if err != nil {
		fail("ListGroups: %v", err)
	}
	if _, exists := listed[*group]; exists {
		fail("ListGroups still lists %s after DeleteGroup: %v", *group, listed)
	}
	fetched, err = admin.FetchOffsets(ctx, *group)
	if err != nil {
		fail("FetchOffsets after DeleteGroup: %v", err)
	}
	for _, offset := range fetched.Sorted() {
		if offset.At >= 0 {
			fail("a deleted group still has committed offset %d at %s/%d", offset.At, offset.Topic, offset.Partition)
		}
	}
	ok("DeleteGroup removed the group and its offsets")
	fmt.Printf("PASS (%.1fs)\n", time.Since(start).Seconds())
}
