package wire

// AMQPVhostField is the extField naming the vhost of an AMQP_* request.
// The gateway sets it on every request, so it is signed with the request
// and the broker ACL can check the vhost's store topic (AMQPStoreTopic)
// before dispatch; with ACL on the broker refuses a body naming another
// vhost.
const AMQPVhostField = "vhost"

// AMQPVhost methods name the vhost a request body acts on, for the
// broker's match against AMQPVhostField.

func (r *AMQPExchangeDeclare) AMQPVhost() string { return r.Vhost }
func (r *AMQPExchangeDelete) AMQPVhost() string  { return r.Vhost }
func (r *AMQPBinding) AMQPVhost() string         { return r.Vhost }
func (r *AMQPQueueDeclare) AMQPVhost() string    { return r.Vhost }
func (r *AMQPQueueDelete) AMQPVhost() string     { return r.Vhost }
func (r *AMQPListRequest) AMQPVhost() string     { return r.Vhost }
func (r *AMQPPublishRequest) AMQPVhost() string  { return r.Vhost }
func (r *AMQPFetchRequest) AMQPVhost() string    { return r.Vhost }
func (r *AMQPSettleRequest) AMQPVhost() string   { return r.Vhost }
func (r *AMQPReleaseRequest) AMQPVhost() string  { return r.Vhost }
func (r *AMQPPurgeRequest) AMQPVhost() string    { return r.Vhost }
func (r *AMQPConsumer) AMQPVhost() string        { return r.Vhost }
