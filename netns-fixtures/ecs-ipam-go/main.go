// ecs-ipam-go: a test double of Amazon's ecs-ipam lease store, on Go's own bbolt (Debian's
// golang-github-coreos-bbolt-dev), written from the behaviour described in
// shared/reference/aws-plugins.md section 3 (not from Amazon's code). It is the independent
// side of tests/netns/tests/ipam/ecs_store.rs: it writes stores the way Amazon's plugin lays them out, reads
// back what our ipam plugin wrote, and runs bolt's own consistency check.
//
// Store: bucket "IPAM" in the bolt file (default $IPAM_DB_PATH, else /data/eni-ipam.db),
// opened once per invocation with bolt's flock and a timeout ($IPAM_DB_CONNECTION_TIMEOUT,
// default 5s), parent directory created 0750, file mode 0644. Every value is an 8-byte
// little-endian index (a per-process counter from 1) followed by the payload; an empty value
// reads as absent. Keys: "<ipv4>" and "6<ipv6>" -> owner id; the gateways -> "GateWay" /
// "GateWayV6"; "lastKnownIP" / "lastKnownIPv6" -> the last address handed out or released.
// Each write is its own bolt transaction, as libkv does.
//
// Usage (flags after the command):
//
//	add   -id ID [-subnet CIDR] [-gateway IP] [-ip IP] [-subnet6 CIDR] [-gateway6 IP] [-ip6 IP]
//	      prints {"ipv4":"a.b.c.d","ipv6":"..."}; "id already exists" for a second ADD, as Amazon
//	del   [-id ID] [-ip IP] [-ip6 IP]   by address(es) if given, else the id's first v4 and v6
//	dump  prints {"key": "value"} of bucket IPAM, index stripped ({} without the bucket)
//	check bolt's tx.Check over the whole file, and every IPAM value at least 8 bytes
//	hold-lock -seconds N   opens the store (flock held), prints "locked", sleeps, closes
//	nest  creates a nested bucket "sub" inside IPAM (a shape our reader refuses)
//	put   -key K -value V  one raw libkv put into IPAM
//
// Common flags: -db PATH. Errors go to stderr with exit status 1.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	bucketName = "IPAM"
	gwMarker   = "GateWay"
	gw6Marker  = "GateWayV6"
	lastV4     = "lastKnownIP"
	lastV6     = "lastKnownIPv6"
)

type store struct {
	db    *bolt.DB
	index uint64
}

func open(path string) (*store, error) {
	timeout := 5 * time.Second
	if s := strings.TrimSpace(os.Getenv("IPAM_DB_CONNECTION_TIMEOUT")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("parsing timeout %q: %v", s, err)
		}
		timeout = d
	}
	if err := os.MkdirAll(filepath.Dir(path), 0750); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0644, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("open %s: %v", path, err)
	}
	return &store{db: db}, nil
}

// get returns the payload and whether the key holds a non-empty value.
func (s *store) get(key string) (string, bool, error) {
	var val []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketName)); b != nil {
			val = append([]byte(nil), b.Get([]byte(key))...)
		}
		return nil
	})
	if err != nil || len(val) == 0 {
		return "", false, err
	}
	if len(val) < 8 {
		return "", true, fmt.Errorf("value of %q is %d bytes, shorter than the libkv index", key, len(val))
	}
	return string(val[8:]), true, nil
}

func (s *store) put(key, value string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketName))
		if err != nil {
			return err
		}
		s.index++
		v := make([]byte, 8, 8+len(value))
		binary.LittleEndian.PutUint64(v, s.index)
		return b.Put([]byte(key), append(v, value...))
	})
}

func (s *store) del(key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketName))
		if b == nil {
			return errors.New("no bucket")
		}
		return b.Delete([]byte(key))
	})
}

type kv struct{ key, value string }

// list returns the pairs whose key starts with prefix, in key order.
func (s *store) list(prefix string) ([]kv, error) {
	var out []kv
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketName))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			if len(v) >= 8 {
				out = append(out, kv{string(k), string(v[8:])})
			}
		}
		return nil
	})
	return out, err
}

// family describes one address family of the store.
type family struct {
	prefix, marker, last string
	v4                   bool
}

var (
	fam4 = family{"", gwMarker, lastV4, true}
	fam6 = family{"6", gw6Marker, lastV6, false}
)

func (f family) key(ip net.IP) string { return f.prefix + ip.String() }

// scanPrefix is the key prefix Amazon lists for id uniqueness and release by id.
func (f family) scanPrefix() string {
	if f.v4 {
		return "1"
	}
	return "6"
}

func (f family) norm(ip net.IP) net.IP {
	if f.v4 {
		return ip.To4()
	}
	return ip.To16()
}

// next is the address after ip in subnet, wrapping, skipping the network address and, for
// IPv4, the broadcast address.
func (f family) next(ip net.IP, subnet *net.IPNet) net.IP {
	network := f.norm(subnet.IP.Mask(subnet.Mask))
	last := make(net.IP, len(network))
	for i := range network {
		last[i] = network[i] | ^subnet.Mask[len(subnet.Mask)-len(network)+i]
	}
	cur := f.norm(ip)
	for {
		if cur.Equal(last) {
			cur = network
		}
		n := new(big.Int).Add(new(big.Int).SetBytes(cur), big.NewInt(1)).Bytes()
		c := make(net.IP, len(network))
		copy(c[len(c)-len(n):], n)
		cur = c
		if cur.Equal(network) || (f.v4 && cur.Equal(last)) {
			continue
		}
		return cur
	}
}

func (s *store) idTaken(f family, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	pairs, err := s.list(f.scanPrefix())
	for _, p := range pairs {
		if p.value == id {
			return true, err
		}
	}
	return false, err
}

func (s *store) addFamily(f family, id string, subnet *net.IPNet, gw, want net.IP) (net.IP, error) {
	if gw == nil {
		gw = f.next(subnet.IP.Mask(subnet.Mask), subnet)
	}
	v, ok, err := s.get(f.key(gw))
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		if err := s.put(f.key(gw), f.marker); err != nil {
			return nil, err
		}
	case v != f.marker:
		return nil, errors.New("ip of gateway has already been used")
	}
	var got net.IP
	if want != nil {
		if _, ok, err := s.get(f.key(want)); err != nil || ok {
			return nil, fmt.Errorf("failed to mark this ip %v as used: Previous K/V pair exists, cannot complete Atomic operation", want)
		}
		if taken, err := s.idTaken(f, id); err != nil || taken {
			return nil, fmt.Errorf("id already exists, id: %s", id)
		}
		if err := s.put(f.key(want), id); err != nil {
			return nil, err
		}
		got = want
	} else {
		start := f.norm(subnet.IP.Mask(subnet.Mask))
		if v, ok, err := s.get(f.last); err != nil {
			return nil, err
		} else if ok {
			if ip := net.ParseIP(v); ip != nil && subnet.Contains(ip) {
				start = f.norm(ip)
			}
		}
		cur := start
		for {
			cur = f.next(cur, subnet)
			if _, ok, err := s.get(f.key(cur)); err != nil {
				return nil, err
			} else if !ok {
				if taken, err := s.idTaken(f, id); err != nil || taken {
					return nil, fmt.Errorf("id already exists, id: %s", id)
				}
				if err := s.put(f.key(cur), id); err != nil {
					return nil, err
				}
				got = cur
				break
			}
			if cur.Equal(start) {
				return nil, errors.New("failed to find available ip addresses in the subnet")
			}
		}
	}
	if err := s.put(f.last, got.String()); err != nil {
		fmt.Fprintf(os.Stderr, "warning: update %s: %v\n", f.last, err)
	}
	return got, nil
}

func (s *store) delFamily(f family, ip net.IP) error {
	if _, ok, err := s.get(f.key(ip)); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("ip does not existed in the db: %s", ip)
	}
	if err := s.del(f.key(ip)); err != nil {
		return err
	}
	return s.put(f.last, ip.String())
}

func (s *store) delByID(id string) error {
	found := false
	for _, f := range []family{fam4, fam6} {
		pairs, err := s.list(f.scanPrefix())
		if err != nil {
			return err
		}
		for _, p := range pairs {
			ip := net.ParseIP(strings.TrimPrefix(p.key, f.prefix))
			if p.value != id || ip == nil || (ip.To4() != nil) != f.v4 {
				continue
			}
			if err := s.delFamily(f, ip); err != nil {
				return err
			}
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("no ip address associated with the given id: %s", id)
	}
	return nil
}

func dump(s *store) error {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketName))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				out[string(k)] = "<bucket>"
			} else if len(v) >= 8 {
				out[string(k)] = string(v[8:])
			} else {
				out[string(k)] = fmt.Sprintf("<%d bytes>", len(v))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	j, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Println(string(j))
	return nil
}

func check(s *store) error {
	var problems []string
	err := s.db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			problems = append(problems, e.Error())
		}
		if b := tx.Bucket([]byte(bucketName)); b != nil {
			_ = b.ForEach(func(k, v []byte) error {
				if v != nil && len(v) < 8 {
					problems = append(problems, fmt.Sprintf("IPAM %q: value of %d bytes has no libkv index", k, len(v)))
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Println("ok")
	return nil
}

func parseIP(s string) net.IP {
	if s == "" {
		return nil
	}
	if ip, _, err := net.ParseCIDR(s); err == nil {
		return ip
	}
	return net.ParseIP(s)
}

func run() error {
	if len(os.Args) < 2 {
		return errors.New("usage: ecs-ipam-go add|del|dump|check|hold-lock|nest|put [flags]")
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	defDB := strings.TrimSpace(os.Getenv("IPAM_DB_PATH"))
	if defDB == "" {
		defDB = "/data/eni-ipam.db"
	}
	dbPath := fs.String("db", defDB, "store file")
	id := fs.String("id", "", "owner id")
	subnet := fs.String("subnet", "", "IPv4 subnet")
	gateway := fs.String("gateway", "", "IPv4 gateway")
	ip := fs.String("ip", "", "IPv4 address")
	subnet6 := fs.String("subnet6", "", "IPv6 subnet")
	gateway6 := fs.String("gateway6", "", "IPv6 gateway")
	ip6 := fs.String("ip6", "", "IPv6 address")
	seconds := fs.Float64("seconds", 1, "hold-lock: how long")
	key := fs.String("key", "", "put: key")
	value := fs.String("value", "", "put: value")
	if err := fs.Parse(os.Args[2:]); err != nil {
		return err
	}
	s, err := open(*dbPath)
	if err != nil {
		return err
	}
	defer s.db.Close()
	switch cmd {
	case "add":
		res := map[string]string{}
		for _, a := range []struct {
			f              family
			subnet, gw, ip string
			name           string
		}{{fam4, *subnet, *gateway, *ip, "ipv4"}, {fam6, *subnet6, *gateway6, *ip6, "ipv6"}} {
			if a.subnet == "" {
				continue
			}
			_, n, err := net.ParseCIDR(a.subnet)
			if err != nil {
				return err
			}
			got, err := s.addFamily(a.f, *id, n, a.f.norm(parseIP(a.gw)), a.f.norm(parseIP(a.ip)))
			if err != nil {
				return err
			}
			res[a.name] = got.String()
		}
		j, _ := json.Marshal(res)
		fmt.Println(string(j))
		return nil
	case "del":
		v4, v6 := parseIP(*ip), parseIP(*ip6)
		if v4 == nil && v6 == nil {
			if *id == "" {
				return errors.New("ip address (ipv4 or ipv6) and id can not all be empty for deletion")
			}
			return s.delByID(*id)
		}
		if v4 != nil {
			if err := s.delFamily(fam4, v4.To4()); err != nil {
				return err
			}
		}
		if v6 != nil {
			return s.delFamily(fam6, v6)
		}
		return nil
	case "dump":
		return dump(s)
	case "check":
		return check(s)
	case "hold-lock":
		fmt.Println("locked")
		time.Sleep(time.Duration(*seconds * float64(time.Second)))
		return nil
	case "nest":
		return s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(bucketName))
			if err != nil {
				return err
			}
			_, err = b.CreateBucketIfNotExists([]byte("sub"))
			return err
		})
	case "put":
		return s.put(*key, *value)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ecs-ipam-go:", err)
		os.Exit(1)
	}
}
